"""The bundled sample app ("myapp"), its git history, and helpers to check it out on hosts."""

from bot.sample.build import SampleRepo, build_sample_origin
from bot.sample.hosts import provision_host_checkout, provision_host_releases, start_app, stop_app

__all__ = [
    "SampleRepo",
    "build_sample_origin",
    "provision_host_checkout",
    "provision_host_releases",
    "start_app",
    "stop_app",
]
