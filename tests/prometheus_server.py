"""A real Prometheus (Debian's `prometheus` package) and the sample app it scrapes, for tests.

`PrometheusServer` runs `prometheus` on a free port with its own config and storage in a temp
dir, scraping the given targets every second. `SampleApp` is a checkout of the sample repo
served by its own `run.sh` on a free port, with `deploy(version)` to change what it runs, and
`traffic()` to send it requests as users would (a scrape is not traffic).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bot.sample.build import SampleRepo, git
from tests.processes import free_port, restartable_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: myapp
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: [{targets}]
"""


class PrometheusServer:
    def __init__(self, root: Path, targets: list[str]) -> None:
        self.root = root
        self.port = restartable_port()  # it is stopped mid-test: see restartable_port
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "prometheus.yml"
        self.config.write_text(CONFIG.format(targets=", ".join(f"'{t}'" for t in targets)))
        self.log = root / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 60) -> None:
        args = [PROMETHEUS, f"--config.file={self.config}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        async with aiohttp.ClientSession() as session:
            for _ in range(int(timeout * 10)):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/-/ready") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"prometheus not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class SampleApp:
    """The sample app cloned from the sample origin, served on its own port by run.sh."""

    def __init__(self, repo: SampleRepo, root: Path) -> None:
        self.dir = root / "myapp"
        self.port = free_port()
        git(["clone", "--quiet", str(repo.origin), str(self.dir)], root)
        (self.dir / ".port").write_text(f"{self.port}\n")
        self.url = f"http://127.0.0.1:{self.port}"

    def run_sh(self, action: str) -> str:
        env = {**os.environ, "APP_PORT": str(self.port)}
        out = subprocess.run(["sh", "run.sh", action], cwd=self.dir, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"run.sh {action}: {out.stdout}{out.stderr}")
        return out.stdout

    def deploy(self, version: str) -> None:
        self.run_sh("stop")
        git(["checkout", "--quiet", version], self.dir)
        self.run_sh("start")

    @contextlib.asynccontextmanager
    async def traffic(self, every: float = 0.05) -> AsyncIterator[None]:
        """Requests to /healthz all along, as a load balancer and users would send them."""

        async def send() -> None:
            async with aiohttp.ClientSession() as session:
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"{self.url}/healthz") as resp:
                            await resp.read()
                    await asyncio.sleep(every)

        task = asyncio.create_task(send())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
