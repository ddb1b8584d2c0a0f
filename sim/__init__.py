"""Verification: stimulus and checking against the golden model, cocotb benches, and the device emulator."""
