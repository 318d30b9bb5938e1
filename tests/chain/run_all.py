#!/usr/bin/env python3
"""Runs every chain scenario (accept/scenarios/NN-*.json) against a fresh okegw each.

    python3 tests/chain/run_all.py --okegw build/okegw --workdir build/tests/work/chain

Prints every step (ok / not ok / skip), a per-scenario summary, and as its last line
`N passed, N failed`; exits 1 when a step failed. Skipped steps (features okegw does not have
yet) are listed but not counted as passed. Registered in CTest as

    add_test(NAME chain_scenarios COMMAND python3 tests/chain/run_all.py
             --okegw $<TARGET_FILE:okegw> --workdir ${CMAKE_CURRENT_BINARY_DIR}/work/chain)

Extra arguments go to the engine, accept/okechain.py (e.g. --only 4, --run-skipped).
"""
import argparse
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "accept"))
import okechain  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--okegw", required=True, help="the okegw binary")
    ap.add_argument("--workdir", required=True, help="a folder for configs, stores and logs (emptied first)")
    args, rest = ap.parse_known_args()
    workdir = os.path.abspath(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    return okechain.run(["--okegw", os.path.abspath(args.okegw), "--workdir", workdir] + rest)


if __name__ == "__main__":
    sys.exit(main())
