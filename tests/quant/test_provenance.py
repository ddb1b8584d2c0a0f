import hashlib
import subprocess
from pathlib import Path

from quant import assets
from quant.provenance import ROOT, file_record, git_commit, provenance


def test_a_file_in_the_checkout_is_named_as_the_checkout_names_it():
    record = file_record(assets.QUANTIZED_MODEL)
    assert record["model_file"] == "quant/assets/latency/model.npz"
    assert record["model_sha256"] == hashlib.sha256(Path(assets.QUANTIZED_MODEL).read_bytes()).hexdigest()


def test_a_file_outside_it_keeps_its_absolute_path_and_the_key_is_chosen(tmp_path):
    (tmp_path / "w.npz").write_bytes(b"abc")
    record = file_record(tmp_path / "w.npz", key="weights")
    # sha256("abc"), FIPS 180-2 appendix B.1
    assert record == {"weights_file": str((tmp_path / "w.npz").resolve()),
                      "weights_sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}


def test_the_commit_is_head_and_the_command_is_what_was_run():
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    assert git_commit().split("+")[0] == head
    assert provenance("hdl.build", ["--board", "arty_a7", "--lanes", 13])["command"] == \
        "python -m hdl.build --board arty_a7 --lanes 13"
