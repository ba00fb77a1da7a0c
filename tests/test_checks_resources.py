"""Resource usage: the parser on fixed outputs, the command quoted, and a real read over SSH."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.checks import ResourcesCheck, ResourcesConfig, Verdict
from bot.checks.resources import command, parse
from bot.checks.resources_check import judge
from bot.config.apps_file import parse_apps
from bot.workflow.errors import HostError
from runners.ssh import SshRunner
from tests.fixtures_hosts import SshEnv

OUTPUT = """@@stat1
cpu  1000 0 500 8000 500 0 0 0 0 0
cpu0 500 0 250 4000 250 0 0 0 0 0
cpu1 500 0 250 4000 250 0 0 0 0 0
@@pid1
4242 (python3 app.py) S 1 4242 4242 0 -1 4194304 10 0 0 0 100 50 0 0 20 0 1 0 1 1 1
@@stat2
cpu  1300 0 600 8050 550 0 0 0 0 0
cpu0 650 0 300 4025 275 0 0 0 0 0
cpu1 650 0 300 4025 275 0 0 0 0 0
@@pid2
4242 (python3 app.py) S 1 4242 4242 0 -1 4194304 10 0 0 0 130 70 0 0 20 0 1 0 1 1 1
@@meminfo
MemTotal:       8000000 kB
MemAvailable:   2000000 kB
@@status
VmRSS:	   51200 kB
@@df
/dev/vda1          100000000 60000000  40000000      60% /srv
@@end
"""


def test_the_output_is_parsed_into_percentages() -> None:
    usage = parse(OUTPUT)
    # 500 ticks passed (1300+600+8050+550 - 1000-500-8000-500), 100 of them idle or iowait.
    assert usage.cpu == pytest.approx(80.0)
    assert usage.memory == pytest.approx(75.0)
    assert usage.disk == pytest.approx(60.0) and usage.mount == "/srv"
    # 50 ticks of the service over 250 ticks per CPU: 20 % of one core.
    assert usage.service_cpu == pytest.approx(20.0)
    assert usage.service_rss == 51200 * 1024 and usage.missing == ()
    assert usage.service() == "service: CPU 20 % of one core, memory (RSS) 50 MB"


def test_each_resource_is_judged_and_the_worst_is_the_headline() -> None:
    usage = parse(OUTPUT)
    ok = judge("web1", usage, ResourcesConfig(), "q")
    assert ok.verdict is Verdict.PASSED and ok.name == "resources on web1"
    assert [(s.labels, s.verdict) for s in ok.series] == [
        ("CPU", Verdict.PASSED),
        ("memory", Verdict.PASSED),
        ("disk /srv", Verdict.PASSED),
    ]
    full = judge("web1", usage, ResourcesConfig(cpu=90, memory=70, disk=58), "q")
    assert full.verdict is Verdict.FAILED and full.reason == "memory"  # 5 points over beats 2
    assert full.describe() == (
        "resources on web1 75 % (max 70 %): memory. CPU 80 %, memory 75 %, disk /srv 60 %; "
        "service: CPU 20 % of one core, memory (RSS) 50 MB"
    )


def test_what_the_output_lacks_is_inconclusive_not_a_pass() -> None:
    cut = OUTPUT.split("@@meminfo")[0]  # the command died half-way
    usage = parse(cut)
    assert usage.missing == ("memory", "disk") and usage.cpu is not None
    r = judge("web1", usage, ResourcesConfig(), "q")
    assert r.verdict is Verdict.INCONCLUSIVE and "no memory reading" in r.reason
    no_service = parse(OUTPUT.replace("4242 (python3 app.py)", "").replace("VmRSS", "Vm"))
    assert no_service.service() == "service: not running (no live pid in its pidfile)"


def test_config_bounds() -> None:
    assert ResourcesConfig() == ResourcesConfig(cpu=90, memory=90, disk=95)
    for bad in ({"cpu": 101}, {"disk": 0}, {"memory": -1}, {"swap": 50}):
        with pytest.raises(ValueError):
            ResourcesConfig.model_validate(bad)


def test_hostile_workdir_and_pidfile_are_quoted(tmp_path: Path) -> None:
    workdir = tmp_path / "my app; touch pwned; $(touch pwned2)"
    workdir.mkdir()
    (workdir / "x'; touch pwned3; '.pid").write_text("$(touch pwned4)\n")
    out = subprocess.run(["sh", "-c", command(str(workdir), "x'; touch pwned3; '.pid")],
                         cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
    assert not list(tmp_path.rglob("pwned*"))
    usage = parse(out.stdout)
    assert usage.missing == () and usage.service_cpu is None  # a pidfile that is not a pid


@dataclass
class Unreachable:
    async def run(self, host: str, command: str, *, timeout: float | None = None) -> object:
        raise HostError(f"cannot connect to {host}: connection refused")


async def test_an_unreachable_host_is_inconclusive() -> None:
    r = await ResourcesCheck(Unreachable(), "web1", "/srv/app", ResourcesConfig()).measure()  # type: ignore[arg-type]
    assert r.verdict is Verdict.INCONCLUSIVE and not r.passed
    assert "could not read web1's resource usage: cannot connect to web1" in r.reason


async def test_resource_usage_is_read_from_the_ssh_hosts(ssh_env: SshEnv) -> None:
    app = parse_apps({"apps": {"myapp": ssh_env.app_config()}}, "test").apps["myapp"]
    runner = SshRunner(app)
    web1, web2 = ssh_env.hosts
    web2.run("./run.sh stop")
    try:
        one = await ResourcesCheck(runner, web1.name, ssh_env.workdir, ResourcesConfig(cpu=100,
                                   memory=100, disk=100)).measure()  # fmt: skip
        tiny = await ResourcesCheck(runner, web2.name, ssh_env.workdir,
                                    ResourcesConfig(disk=0.001)).measure()  # fmt: skip
    finally:
        await runner.close()
    assert one.verdict is Verdict.PASSED, one.describe()
    for s in one.series:
        assert s.value is not None and 0 <= s.value <= 100, s
    assert [s.labels.split()[0] for s in one.series] == ["CPU", "memory", "disk"]
    pid = int(web1.run("cat app.pid"))
    rss_kb = int(web1.run(f"grep VmRSS /proc/{pid}/status").split()[1])
    assert f"memory (RSS) {rss_kb * 1024 / 2**20:.0f} MB" in one.note, one.note
    assert tiny.verdict is Verdict.FAILED and tiny.reason.startswith("disk")
    assert tiny.note.endswith("; service: not running (no live pid in its pidfile)")
    assert all(s.value is not None for s in tiny.series)
