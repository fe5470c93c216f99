"""One worker process: ``python -m benches.distributed.worker '<spec json>'``.

The rank and the cluster come from the environment the launcher (or torchrun, or a
TF_CONFIG on two hosts) sets. The spec (``task: run``) says what to run:

- ``workload``: ``parity_steps`` training steps from the shared numpy weights on this
  rank's slice of the global batch (its parameters then go to ``params-<rank>.npz`` for
  the parity check), ``warmup`` more, then ``rounds`` timed steps.
- ``sizes`` (after the training, in the same processes: a second launch would cost
  another start-up): for each size, one checked warm-up all-reduce, then timed ones.

How a round is timed: before every timed step all workers meet at a barrier (a tiny
collective), then each reads ``perf_counter``, runs the step, fences it (torch on CPU
returns when done; TensorFlow's output is materialised; CUDA is synchronised) and
reads the clock again. The coordinator takes, per round, the slowest worker's time:
the round's time. The barrier aligns the starts to within its own skew (tens of
microseconds on loopback) and is not inside the timed region; what the max adds is
that skew, at most. Wall-clock stamps (``time.time()``) give the start-up cost:
launch to the end of the first step.
"""

from __future__ import annotations

import json
import os
import sys
import time

_STARTED = time.time()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    threads = int(spec["threads"])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    workdir, rank_env = os.environ["TFPT_WORKDIR"], int(os.environ["TFPT_RANK"])
    if spec["task"] == "sleep":  # for the launcher's own tests: a worker that hangs
        time.sleep(float(spec.get("seconds", 3600)))
        return 0
    if spec["task"] == "crash" and rank_env == int(spec.get("rank", 0)):
        print("worker: crashing on purpose", file=sys.stderr)
        return 3

    if spec["framework"] == "torch":
        from benches.distributed import torch_dp as dp
    else:
        from benches.distributed import tf_dp as dp
    import numpy as np

    from benches.workloads.specs import WORKLOADS, make_batch

    dp.set_threads(threads)
    imported = time.time()
    device = spec.get("device", "cpu")
    rank, world = dp.init(device)
    fence = dp.fence(device)
    barrier = dp.barrier(device)
    out = {"rank": rank, "world": world, "threads": threads, "pid": os.getpid(), "started": _STARTED,
           "imported": imported, "initialised": time.time()}

    if spec["task"] not in ("run", "train", "allreduce"):
        raise SystemExit(f"unknown task {spec['task']!r}")
    if spec.get("workload"):
        workload = WORKLOADS[spec["workload"]]
        batch = int(spec["batch"])
        x, target = make_batch(workload, batch * world)  # the global batch; each replica takes its rows
        trainer = dp.Trainer(workload, x, target, batch, device)
        for i in range(int(spec["parity_steps"])):
            loss = trainer.step()
            fence(loss)
            if i == 0:
                out["first_step_done"] = time.time()
        np.savez(os.path.join(workdir, f"params-{rank}.npz"), **trainer.canonical_params())
        for _ in range(int(spec["warmup"])):
            fence(trainer.step())
        rounds = []
        for _ in range(int(spec["rounds"])):
            barrier()
            t0 = time.perf_counter()
            fence(trainer.step())
            rounds.append(time.perf_counter() - t0)
        out["rounds"] = rounds
    if spec.get("sizes"):
        out["sizes"] = {}
        for nbytes in spec["sizes"]:
            case = dp.AllReduce(int(nbytes), device)
            fence(case.step())  # warm-up, and the check that it did reduce across every worker
            if case.first_value() != float(world):
                raise SystemExit(f"all-reduce of {nbytes} bytes gave {case.first_value()}, expected {world}")
            rounds = []
            for _ in range(_rounds_for(int(nbytes), int(spec["allreduce_rounds"]))):
                case.reset()
                barrier()
                t0 = time.perf_counter()
                fence(case.step())
                rounds.append(time.perf_counter() - t0)
            out["sizes"][str(nbytes)] = rounds
            del case
    barrier()  # nobody leaves while a peer may still need it
    out["finished"] = time.time()
    with open(os.path.join(workdir, f"out-{rank_env}.json"), "w") as f:
        json.dump(out, f)
    dp.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # TF's gRPC server threads can hold a clean interpreter exit for seconds


def _rounds_for(nbytes: int, rounds: int) -> int:
    """Fewer rounds for large messages (each takes long and varies little): at least 3."""
    return max(3, min(rounds, rounds * (4 << 20) // max(nbytes, 1)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
