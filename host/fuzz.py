"""Fuzz the device path: malformed frames and corrupt images on the line, between requests that are checked.

Usage::

    python -m host.fuzz --rounds 500 --images 200 --out runs/fuzz.json

**Link fuzzing.** The golden-model emulator runs as a process of its own (``python -m
sim.emulator``). Each round puts one malformed item on the line, bypassing the driver (random
bytes, a damaged or truncated frame, an oversize header, an unknown type, a bad payload, a
stray request whose reply nobody reads, the first frame of a sample that never ends, a LOAD out
of sequence, or a whole CRC-valid corrupt image with its COMMIT), then makes one request through
:class:`host.device.Device` (identify, verify, infer or load a model) and checks the answer
against what the device must hold: the fuzzer follows the device's state itself, deciding
whether an injected image is accepted with :class:`firmware.image.DeviceRules` and computing
every expected result with the golden model. It counts wrong answers (a value that differs, or
an error that does not belong to the state), hangs (no answer within the driver's retries) and
crashes (the emulator process gone).

**Image parity** (``--images``): a corpus of CRC-valid corrupt images (:mod:`sim.image_corpus`)
goes to the emulator and to the device's Verilog (:mod:`sim.parity`); their replies must be
identical.

Writes ``OUT`` (JSON): ``rounds``, ``malformed``, ``wrong_answers``, ``hangs``, ``crashes``,
``image_parity_cases``, ``image_parity_mismatches``, the counts per kind and the git commit.

Exit codes: 0 no wrong answer, hang, crash or mismatch; 1 any of them; 2 bad arguments or no
simulator for ``--images``.
"""

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from firmware import image as fw_image
from firmware.protocol import Frame, FrameDecoder, Type, encode_frame, encode_steps, split_records
from quant import golden
from quant.provenance import provenance

from .device import Device, DeviceError, DeviceTimeout

__all__ = ["fuzz_link", "main"]

INJECTIONS = ("garbage", "damaged", "truncated", "oversize", "unknown_type", "bad_payload", "stray_request",
              "partial_sample", "load_out_of_sequence", "corrupt_image")
REQUESTS = ("identify", "verify", "infer", "infer", "load")


def fuzz_networks():
    """The device's baked network and another to load: 300 inputs, so a sample takes two STEPS frames."""
    import torch

    from quant.model import SRCNet
    from quant.quantize import quantize_model

    nets = []
    for seed in (41, 42):
        torch.manual_seed(seed)
        model = SRCNet([300, 16, 20], n_classes=2)
        with torch.no_grad():
            for layer in model.layers:
                layer.weight.mul_(4)
                layer.bias.uniform_(-6, -4)
        nets.append(quantize_model(model, n_steps=40))
    return nets


class _Emulator:
    """``python -m sim.emulator`` in a process of its own, built with ``network``."""

    def __init__(self, network, lanes, idle_timeout, workdir):
        from quant.quantize import save_network

        path = Path(workdir) / "baked.npz"
        save_network(path, network)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sim.emulator", "--model", str(path), "--lanes", str(lanes),
             "--idle-timeout", str(idle_timeout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[1])
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("socket://"):
            raise RuntimeError(f"the emulator did not start: {self.process.stderr.read()}")

    @property
    def alive(self):
        return self.process.poll() is None

    def stop(self):
        self.process.terminate()
        try:
            return self.process.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            self.process.kill()
            return ""


class _Fuzzer:
    def __init__(self, device, rules, networks, rng, lanes):
        self.device, self.rules, self.rng, self.lanes = device, rules, rng, lanes
        self.blobs = [fw_image.to_bytes(fw_image.pack(n, lanes)) for n in networks]
        self.networks = networks
        self.baked_image = fw_image.pack(networks[0], lanes)
        self.held, self.held_image = self.blobs[0], self.baked_image   # what the device must hold, or None
        self.counts = Counter()
        self.problems = []

    # -- what goes on the line -----------------------------------------------------------------
    def _no_frame(self, data):
        """True when ``data`` holds no CRC-valid frame (which could change the device's state)."""
        decoder = FrameDecoder()
        return not any(isinstance(e, Frame) for e in decoder.feed(data) + decoder.timeout())

    def _sample(self, image):
        return self.rng.random((image.n_steps, image.layers[0].n_in)) < 0.3

    def inject(self, kind):
        rng, write = self.rng, self.device.transport.write
        seq = int(rng.integers(256))
        request = encode_frame(int(rng.choice([Type.IDENTIFY, Type.VERIFY, Type.ABORT])), b"", seq)
        if kind == "garbage":
            while True:
                data = rng.integers(0, 256, int(rng.integers(1, 41)), dtype=np.uint8).tobytes()
                if self._no_frame(data):
                    break
        elif kind == "damaged":
            frame = bytearray(encode_frame(Type.STEPS, rng.integers(0, 256, 30, dtype=np.uint8).tobytes(), seq))
            frame[int(rng.integers(1, len(frame)))] ^= 1 << int(rng.integers(8))
            data = bytes(frame)
            if not self._no_frame(data):
                data = data[:-1] + bytes([data[-1] ^ 1])
        elif kind == "truncated":
            frame = encode_frame(Type.LOAD, struct.pack("<I", 0) + bytes(200), seq)
            data = frame[:int(rng.integers(1, len(frame) - 1))]
        elif kind == "oversize":
            data = bytes([0xA5, Type.STEPS, seq, 0xFF, 0xFF])
        elif kind == "unknown_type":
            data = encode_frame(0x40 + int(rng.integers(0x30)), b"?", seq)
        elif kind == "bad_payload":
            data = rng.choice([encode_frame(Type.STEPS, b"\x01\x77", seq), encode_frame(Type.COMMIT, b"\x00", seq),
                               encode_frame(Type.LOAD, b"\x01", seq), encode_frame(Type.STEPS, b"", seq)])
        elif kind == "stray_request":
            data = request
        elif kind == "partial_sample":
            image = self.device.image or fw_image.pack(self.networks[0], self.lanes)
            payloads = split_records(encode_steps(self._sample(image), image.config.one))
            data = encode_frame(Type.STEPS, payloads[0], seq)
        elif kind == "load_out_of_sequence":
            data = encode_frame(Type.LOAD, struct.pack("<I", 1 + int(rng.integers(1000))), seq)
        else:  # corrupt_image
            from sim.image_corpus import RandomPicker, corrupt_image

            _, blob, _ = corrupt_image(self.networks[1], self.lanes, RandomPicker(int(rng.integers(2 ** 31))))
            data = b"".join(encode_frame(Type.LOAD, struct.pack("<I", k) + blob[k:k + 4000], seq)
                            for k in range(0, len(blob), 4000))
            data += encode_frame(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob)), seq)
            self._hold(blob)
        write(data)
        self.counts[kind] += 1

    def _hold(self, blob):
        """The device took ``blob`` (LOAD from 0, COMMIT): it holds it if the rules accept it, else nothing."""
        try:
            self.held, self.held_image = blob, self.rules.validate(blob)
        except fw_image.ImageError:
            self.held, self.held_image = None, None

    def resynchronise(self):
        """After a wrong answer the device's state is not known: load a known model (force)."""
        try:
            self.device.load_model(self.networks[0], force=True)
            self._hold(self.blobs[0])
        except Exception:
            pass

    # -- the checked request -------------------------------------------------------------------
    def request(self, kind):
        device, held = self.device, self.held
        checksum = fw_image.checksum(held) if held is not None else 0
        if kind == "identify":
            identity = device.identify()
            expected = (self.lanes, self.rules.layers, self.rules.classes, held is not None, checksum)
            got = (identity.lanes, identity.layers, identity.classes, identity.loaded, identity.checksum)
            return got == expected, f"identity {got}, expected {expected}"
        if kind == "verify":
            got = device.verify()
            return got == (held is not None, checksum), f"verify {got}, expected {(held is not None, checksum)}"
        if kind == "load":
            k = int(self.rng.integers(2))
            got = device.load_model(self.networks[k], force=True)
            self._hold(self.blobs[k])
            return got == fw_image.checksum(self.blobs[k]), f"load returned {got:08x}"
        # infer, on the image the device holds (its T and inputs may differ from the driver's last load)
        image = self.held_image if held is not None else self.baked_image
        device.image = image
        spikes = self._sample(image)
        if held is None:
            try:
                device.infer(spikes)
            except DeviceError as error:
                return "NO_MODEL" in str(error), f"infer without a model raised {error}"
            return False, "infer without a model gave a result"
        got = device.infer(spikes)
        expected = golden.run(fw_image.to_network(image), spikes[:, None, :])
        same = (np.array_equal(got.scores, expected.scores[0]) and got.prediction == expected.prediction[0]
                and list(got.spike_counts) == [int(c[0]) for c in expected.spike_counts])
        return same, f"infer gave {got.scores.tolist()}, golden {expected.scores[0].tolist()}"


def fuzz_link(rounds, seed=0, lanes=4, idle_timeout=0.05, timeout=0.5, log=None):
    """Run ``rounds`` rounds against an emulator process; returns the counts (see the module docstring)."""
    networks = fuzz_networks()
    rng = np.random.default_rng(seed)
    rules = fw_image.DeviceRules.for_image(fw_image.pack(networks[0], lanes))
    report = Counter(rounds=0, malformed=0, wrong_answers=0, hangs=0, crashes=0)
    problems, kinds = [], Counter()
    with tempfile.TemporaryDirectory() as workdir:
        emulator = _Emulator(networks[0], lanes, idle_timeout, workdir)
        try:
            with Device(emulator.url, timeout=timeout) as device:
                fuzzer = _Fuzzer(device, rules, networks, rng, lanes)
                for round_ in range(rounds):
                    injection = str(rng.choice(INJECTIONS))
                    request = str(rng.choice(REQUESTS))
                    fuzzer.inject(injection)
                    report["malformed"] += 1
                    started = time.monotonic()
                    try:
                        ok, detail = fuzzer.request(request)
                    except DeviceTimeout as error:
                        report["hangs"] += 1
                        ok, detail = True, None
                        problems.append({"round": round_, "injection": injection, "request": request,
                                         "hang": str(error)})
                    except Exception as error:  # any other failure of the request is a wrong answer
                        ok, detail = False, f"{type(error).__name__}: {error}"
                    if not ok:
                        report["wrong_answers"] += 1
                        problems.append({"round": round_, "injection": injection, "request": request,
                                         "detail": detail})
                        fuzzer.resynchronise()
                    kinds[f"{injection} -> {request}"] += 1
                    report["rounds"] += 1
                    if log:
                        log(round_, injection, request, ok, time.monotonic() - started)
                    if not emulator.alive:
                        report["crashes"] += 1
                        break
                report["stale_replies_skipped"] = device.stale_replies
        finally:
            stderr = emulator.stop() if emulator.alive else emulator.process.stderr.read()
        if "internal error" in (stderr or ""):
            problems.append({"emulator_stderr": stderr[-2000:]})
            report["crashes"] += stderr.count("internal error")
    out = dict(report)
    out["injections"] = dict(fuzzer.counts)
    out["problems"] = problems[:20]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host.fuzz", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 clean; 1 a wrong answer, hang, crash or parity mismatch; "
                                       "2 bad arguments or no HDL simulator for --images.")
    p.add_argument("--rounds", type=int, default=500, help="link-fuzzing rounds (one malformed item, one checked "
                                                            "request each)")
    p.add_argument("--images", type=int, default=0, help="corrupt images for the emulator/gateware parity check "
                                                          "(needs an HDL simulator; 0: skip)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything drawn")
    p.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator",
                   help="simulator of the gateware for --images")
    p.add_argument("--out", type=Path, default=Path("runs/fuzz.json"), help="report (JSON)")
    args = p.parse_args(argv)
    if args.rounds < 0 or args.images < 0:
        p.error("--rounds and --images must not be negative")
    from tqdm import tqdm

    bar = tqdm(total=args.rounds, desc="link fuzzing", dynamic_ncols=True)
    report = fuzz_link(args.rounds, args.seed, log=lambda *a: bar.update(1))
    bar.close()
    report["image_parity_cases"], report["image_parity_mismatches"] = 0, 0
    if args.images:
        from firmware.image import DeviceLimits
        from sim.image_corpus import corpus_networks, random_corpus
        from sim.parity import image_parity
        from sim.runner import SimulatorMissing

        baked, other = corpus_networks()
        bar = tqdm(total=args.images, desc="image parity", dynamic_ncols=True)
        try:
            parity = image_parity(baked, random_corpus(other, 4, args.images, args.seed), 4,
                                  DeviceLimits(2, 16, 24, 200, 20, 16), simulator=args.simulator, seed=args.seed,
                                  log=lambda *a: bar.update(1))
        except SimulatorMissing as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        bar.close()
        report["image_parity_cases"], report["image_parity_mismatches"] = parity["cases"], parity["mismatches"]
        report["image_parity_accepted"] = parity["accepted"]
        report["image_parity_simulator"] = args.simulator
        report["problems"] += parity["examples"]
    report.update(seed=args.seed, **provenance("host.fuzz", argv))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    summary = {k: report[k] for k in ("rounds", "malformed", "wrong_answers", "hangs", "crashes",
                                      "image_parity_cases", "image_parity_mismatches")}
    print(json.dumps(summary))
    bad = report["wrong_answers"] + report["hangs"] + report["crashes"] + report["image_parity_mismatches"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
