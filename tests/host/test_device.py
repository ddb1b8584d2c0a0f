"""The host driver over the emulator: sockets, loop://, PCIe FIFOs, and CRC retries."""

import json
import os
import threading
import time

import numpy as np
import pytest

from firmware import image as fw_image
from firmware.image import DeviceLimits
from firmware.protocol import SYNC, FrameDecoder, Type
from host.device import Device, DeviceError, DeviceTimeout
from host.infer import main as infer
from host.transport import PCIeTransport, SerialTransport, TransportError
from quant import assets, golden, intencode
from quant.samples import load_samples
from tests.helpers import TRAINED_RECURRENT, random_network, require_simulator
from sim.emulator import DeviceModel, serve


#: The emulated devices of these tests: built for a 20-12-100 network, able to hold up to 300 inputs and T = 256.
LIMITS = DeviceLimits(2, 300, 100, 2000, 60, 256)
BAKED = random_network([20, 12, 100], seed=12, bias=(-6.0, -6.0))


@pytest.fixture
def network():
    return random_network([20, 12, 100], seed=2, bias=(-6.0, -6.0))


@pytest.fixture
def emulator():
    server = serve(network=BAKED, lanes=4, limits=LIMITS)
    yield server
    server.shutdown()
    server.server_close()


def test_device_over_a_socket_matches_golden(network, emulator):
    spikes = np.random.default_rng(3).random((4, 30, 20)) < 0.3
    with Device(emulator.url) as device:
        assert device.identify().lanes == 4
        device.load_model(network)
        assert device.verify()[0]
        for sample in spikes:
            got, expected = device.infer(sample), golden.run(network, sample[:, None, :])
            assert np.array_equal(got.scores, expected.scores[0]) and got.prediction == expected.prediction[0]
            assert got.bytes_sent > 0 and got.cycles > 0
        with pytest.raises(ValueError, match=r"shape \(30, 20\)"):
            device.infer(spikes[0][:, :10])


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this system")
def test_device_on_a_pty_matches_golden(network):
    server = serve(network=BAKED, lanes=4, limits=LIMITS, pty=True)
    try:
        assert server.url.startswith("/dev/")
        spikes = np.random.default_rng(6).random((3, 30, 20)) < 0.3
        with Device(server.url, timeout=2.0) as device:   # a plain serial-port path
            device.load_model(network)
            for sample in spikes:
                got, expected = device.infer(sample), golden.run(network, sample[:, None, :])
                assert np.array_equal(got.scores, expected.scores[0]) and got.prediction == expected.prediction[0]
    finally:
        server.shutdown()
        server.server_close()


class FlakyTransport:
    """Corrupts the first ``n`` bytes read back (one flipped bit each time), then behaves."""

    def __init__(self, inner, corrupt_replies):
        self.inner, self.left, self.timeout, self.url = inner, corrupt_replies, inner.timeout, inner.url

    def write(self, data):
        self.inner.write(data)

    def read(self, n):
        data = self.inner.read(n)
        if data and self.left and data[0] == 0xA5:
            self.left -= 1
            self._corrupt_next = True
            return data
        if data and getattr(self, "_corrupt_next", False):
            self._corrupt_next = False
            return bytes([data[0] ^ 0x10]) + data[1:]
        return data

    def close(self):
        self.inner.close()


def test_corrupt_replies_are_retried(network, emulator):
    flaky = FlakyTransport(SerialTransport(emulator.url, timeout=1.0), corrupt_replies=2)
    with Device(flaky, retries=3) as device:
        assert device.identify().lanes == 4
    always = FlakyTransport(SerialTransport(emulator.url, timeout=1.0), corrupt_replies=100)
    with Device(always, retries=2) as device, pytest.raises(DeviceError, match="did not resynchronise"):
        device.identify()


class DamagingTransport:
    """Flips one payload bit of the ``index``-th frame of type ``kind`` written, or read back."""

    def __init__(self, inner, kind, index=0, replies=False):
        self.inner, self.timeout, self.url = inner, inner.timeout, inner.url
        self.kind, self.index, self.replies, self.seen, self.done = kind, index, replies, 0, False
        self.decoder = FrameDecoder()

    def _damage(self, data):
        if self.done:
            return data
        for start in range(len(data) - 6):
            if data[start] == SYNC and data[start + 1] == self.kind:
                if self.seen == self.index:
                    self.done = True
                    k = start + 5
                    return data[:k] + bytes([data[k] ^ 0x01]) + data[k + 1:]
                self.seen += 1
        return data

    def write(self, data):
        self.inner.write(data if self.replies else self._damage(data))

    def read(self, n):
        data = self.inner.read(n)
        if self.replies and data and not self.done:
            time.sleep(0.05)  # let the whole reply arrive, so that it is damaged in one piece
            while self.inner.port.in_waiting:  # over socket:// this is 1 while anything is left
                data += self.inner.read(self.inner.port.in_waiting)
            data = self._damage(data)
        return data

    def close(self):
        self.inner.close()


@pytest.mark.parametrize("kind, index, replies", [
    (Type.STEPS, 0, False),   # the first frame of a two-frame sample: its second frame is refused too
    (Type.STEPS, 1, False),   # the last frame: the sample never completes
    (Type.RESULT, 0, True),   # the result, on the way back
    (Type.LOAD, 1, False),    # an image chunk
    (Type.ACK, 1, True),      # the device took the chunk, the host cannot know: the image starts again
    (Type.COMMIT, 0, False),
])
def test_damaged_frames_are_repeated_after_a_resync(emulator, kind, index, replies):
    network = random_network([300, 12, 100], seed=5, n_steps=200)
    sample = np.random.default_rng(4).random((200, 300)) < 0.5   # 2 STEPS frames
    expected = golden.run(network, sample[:, None, :])
    with Device(DamagingTransport(SerialTransport(emulator.url, timeout=2.0), kind, index, replies)) as device:
        device.load_model(network, force=True)
        assert device.verify() == (True, fw_image.checksum(fw_image.to_bytes(device.image)))
        for _ in range(2):
            got = device.infer(sample)
            assert np.array_equal(got.scores, expected.scores[0]) and got.prediction == expected.prediction[0]
        assert device.transport.done  # the damage did happen


def test_a_device_of_another_protocol_version_is_refused(emulator, monkeypatch):
    import sim.emulator
    monkeypatch.setattr(sim.emulator, "PROTOCOL_VERSION", sim.emulator.PROTOCOL_VERSION - 1)
    with Device(emulator.url) as device, pytest.raises(DeviceError, match="protocol version"):
        device.identify()


def test_loop_url_echoes_and_the_driver_says_what_it_got():
    with Device("loop://", timeout=0.2, retries=1) as device, pytest.raises(
            DeviceError, match="did not resynchronise.*expected reply 0x81 to request 1, got 0x01"):
        device.identify()


def test_silence_times_out():
    with Device("loop://", timeout=0.2) as device:
        device.transport.read = lambda n: b""   # a device that never answers
        with pytest.raises(DeviceTimeout, match="no reply"):
            device.identify()


def test_unreachable_port_is_a_clear_error():
    with pytest.raises(TransportError, match="cannot open"):
        SerialTransport("/dev/does-not-exist")


def test_pcie_transport_over_fifos(tmp_path, network):
    h2c, c2h = tmp_path / "h2c", tmp_path / "c2h"
    os.mkfifo(h2c)
    os.mkfifo(c2h)
    device_model, stop = DeviceModel(fw_image.pack(BAKED, 4), LIMITS), threading.Event()

    def serve_fifos():
        with open(h2c, "rb", buffering=0) as inbox, open(c2h, "wb", buffering=0) as outbox:
            decoder = FrameDecoder()
            while not stop.is_set():
                data = inbox.read(4096)
                if not data:
                    return
                for event in decoder.feed(data):
                    for reply in device_model.handle(event):
                        outbox.write(reply)

    thread = threading.Thread(target=serve_fifos, daemon=True)
    thread.start()
    transport = PCIeTransport(str(h2c), str(c2h), timeout=5.0)
    with Device(transport) as device:
        device.load_model(network)
        sample = np.random.default_rng(5).random((30, 20)) < 0.3
        assert device.infer(sample).prediction == golden.run(network, sample[:, None, :]).prediction[0]
    stop.set()
    thread.join(timeout=5)


def test_host_infer_on_shipped_samples_matches_golden(tmp_path, capsys):
    assert infer(["--emulate", "--send", "spikes", "--limit", "25", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["golden_agreement"] == 1.0 and report["golden_scores_identical"]
    manifest = json.loads(assets.MANIFEST.read_text())
    labels = load_samples(assets.SAMPLES)[1][:25]
    assert report["accuracy"] == (np.array(manifest["fixed_predictions"][:25]) == labels).mean()
    assert report["bytes_per_sample"] > 0 and report["cycles_per_sample"] > 0
    # which model and which code: the shipped model named as the checkout names it, with its hash
    assert report["model_file"] == "quant/assets/latency/model.npz"
    assert report["model_sha256"] == manifest["sha256"]["model.npz"]
    assert report["command"].startswith("python -m host.infer --emulate") and "git_commit" in report


def test_host_infer_bad_port_is_a_link_failure(capsys):
    assert infer(["--port", "/dev/does-not-exist", "--limit", "1"]) == 3
    assert "cannot open" in capsys.readouterr().err


def test_rtl_backend_gives_the_golden_answers(tmp_path, network):
    require_simulator()
    # The gateware starts with another network of the same shape; the host loads its own over the link.
    server = serve("rtl", network=random_network([20, 12, 100], seed=5), lanes=4)
    try:
        spikes = np.random.default_rng(7).random((3, 30, 20)) < 0.3
        with Device(server.url, timeout=120) as device:
            device.load_model(network)
            for sample in spikes:
                got, expected = device.infer(sample), golden.run(network, sample[:, None, :], record=True)
                assert np.array_equal(got.scores, expected.scores[0]) and got.prediction == expected.prediction[0]
                assert list(got.spike_counts) == [int(c[0]) for c in expected.spike_counts]
            # Images, encoded by the gateware's encoder; the host reproduces its spikes from the seed.
            image = device.image
            for k, encoding in enumerate(("rate", "latency", "rate")):
                pixels = (np.random.default_rng(20 + k).random(20) < 0.5) * np.random.default_rng(k).integers(1, 256, 20)
                got = device.infer_image(pixels, encoding, seed=1000 + k)
                spikes_k = intencode.encode_with_tables(pixels, encoding, 1000 + k, image.n_steps, image.rate_table,
                                                        image.latency_table, image.config.draw_bits)
                expected = golden.run(network, spikes_k[:, None, :], record=True)
                assert np.array_equal(got.scores, expected.scores[0]) and got.input_events == spikes_k.sum() > 0
                assert list(got.spike_counts) == [int(c[0]) for c in expected.spike_counts]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("encoding", ["rate", "latency"])
def test_host_infer_through_the_rtl_back_end_equals_golden(tmp_path, encoding):
    """``python -m host.infer --emulate --backend rtl`` on shipped images (IMAGE messages, encoded by the
    gateware): the device's answers are the golden model's."""
    require_simulator()
    out = tmp_path / "report.json"
    assert infer(["--emulate", "--backend", "rtl", "--encoding", encoding, "--limit", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["golden_scores_identical"] and report["golden_agreement"] == 1.0 and report["samples"] == 2
    assert report["sent"] == "images" and report["input_events_per_sample"] > 0


# The gateware back end takes a minute and a half (Verilog of the whole device under cocotb); the
# recurrent device is also proven reply for reply in tests/hdl/test_device.py, so it runs with --run-slow.
@pytest.mark.parametrize("backend", ["golden", pytest.param("rtl", marks=pytest.mark.slow)])
def test_a_recurrent_network_end_to_end(backend):
    """The host packs a recurrent network, a device built recurrent takes it, and the answers are the
    golden model's: through the emulator and through the gateware."""
    if backend == "rtl":
        require_simulator()
    limits = DeviceLimits(2, 20, 100, 2000, 60, 64, recurrent=[0])
    server = serve(backend, network=random_network([20, 12, 100], seed=14, recurrent=[0]), lanes=4, limits=limits)
    network = random_network([20, 12, 100], seed=15, recurrent=[0])
    try:
        with Device(server.url, timeout=120) as device:
            assert device.identify().recurrent_layers == (0,)
            device.load_model(network)
            for sample in np.random.default_rng(8).random((2, 30, 20)) < 0.3:
                got, expected = device.infer(sample), golden.run(network, sample[:, None, :])
                assert np.array_equal(got.scores, expected.scores[0]) and got.prediction == expected.prediction[0]
            with pytest.raises(DeviceError, match="recurrent layers"):
                device.load_model(random_network([20, 12, 100], seed=16))
    finally:
        server.shutdown()
        server.server_close()


def test_host_infer_runs_the_trained_recurrent_model_through_the_emulator(tmp_path):
    folder = TRAINED_RECURRENT
    assert infer(["--emulate", "--model", str(folder / "model.npz"), "--samples-file", str(folder / "samples.npz"),
                  "--limit", "8", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"] == "784-128-R128-100"
    assert report["golden_agreement"] == 1.0 and report["golden_scores_identical"]
    manifest = json.loads((folder / "manifest.json").read_text())
    labels = load_samples(folder / "samples.npz")[1][:8]
    assert report["accuracy"] == (np.array(manifest["fixed_predictions"][:8]) == labels).mean()
