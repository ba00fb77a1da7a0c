"""Rewind: roll back a failed deployment and recover the service, from one command."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# asyncssh still names cryptography's DSA types while importing, and cryptography (45+) warns
# about each use: five lines on every command, about asyncssh's code, that no user can act on.
# Silenced here, before any module of ours imports asyncssh, only for that category and only
# when asyncssh is the one warned: a deprecation in our own code still shows.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"asyncssh\.")

__version__ = "0.1.0"
