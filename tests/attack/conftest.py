"""The attacker suite shares the contract suite's fixtures (the stack's environment, listener,
spawn, wait_for, the OpenAPI check of every answer): one conftest, imported here."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "contract"))

from conftest import *  # noqa: E402,F401,F403
