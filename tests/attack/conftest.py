"""The attacker suite shares the contract suite's fixtures and helpers (the stack's environment,
listener, spawn, wait_for, the OpenAPI check of every answer): tests/contract/conftest.py is loaded
here under its own module name and everything it defines is re-exported, so a test of this suite
imports from conftest exactly as a contract test does."""
import importlib.util
import os
import sys

_CONTRACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "contract")
sys.path.insert(0, _CONTRACT)  # openapi_check and the contract suite's other helper modules

_spec = importlib.util.spec_from_file_location("contract_conftest", os.path.join(_CONTRACT, "conftest.py"))
_contract = importlib.util.module_from_spec(_spec)
sys.modules["contract_conftest"] = _contract
_spec.loader.exec_module(_contract)
globals().update({k: v for k, v in vars(_contract).items() if not k.startswith("__")})
