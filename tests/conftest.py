import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow or gpu")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))
        if "gpu" in item.keywords and not (run_slow and torch.cuda.is_available()):
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device and --run-slow"))
