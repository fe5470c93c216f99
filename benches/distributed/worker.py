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
TF_EXIT_GRACE_S = 1.0


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    threads = int(spec["threads"])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The launcher sets TFPT_*; under torchrun or a hand-set TF_CONFIG (two hosts) the rank comes from those.
    workdir = os.environ.get("TFPT_WORKDIR", ".")
    rank_env = int(os.environ.get("TFPT_RANK") or os.environ.get("RANK") or _tf_config_index())
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
    if spec["framework"] == "tensorflow" and world > 1:
        # TF's ring collectives are pull-based: a worker whose last all-reduce finished may still be
        # serving a buffer its peer has yet to fetch; leaving at once resets that peer's connection.
        # (A single worker has no peer to serve.)
        time.sleep(TF_EXIT_GRACE_S)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # TF's gRPC server threads can hold a clean interpreter exit for seconds


def _tf_config_index() -> int:
    return int(json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {}).get("index", 0))


def summarise(paths: list[str]) -> None:
    """Print what the coordinator would record from workers' out-<rank>.json (gathered from several hosts).

    Round time = the slowest worker per round; the params-<rank>.npz beside each file must be identical.
    """
    import numpy as np

    from benches.distributed import bus_bandwidth

    outs = [json.load(open(p)) for p in paths]
    n = outs[0]["world"]
    if outs[0].get("rounds"):
        rounds = [max(r) for r in zip(*(o["rounds"] for o in outs))]
        print(f"{n} workers: median step (slowest worker) {sorted(rounds)[len(rounds) // 2] * 1e3:.1f} ms")
        params = [np.load(os.path.join(os.path.dirname(p) or ".", f"params-{o['rank']}.npz")) for p, o in zip(paths, outs)]
        same = all(np.array_equal(q[k], params[0][k]) for q in params[1:] for k in params[0].files)
        print(f"parameters identical on all {len(params)} workers: {same}")
    for size, _ in sorted(outs[0].get("sizes", {}).items(), key=lambda kv: int(kv[0])):
        rounds = [max(r) for r in zip(*(o["sizes"][size] for o in outs))]
        algbw, busbw = bus_bandwidth(int(size), sorted(rounds)[len(rounds) // 2], n)
        print(f"all-reduce {int(size):>10} B: algbw {algbw / 1e9:.3g} GB/s, busbw {busbw / 1e9:.3g} GB/s")


def _rounds_for(nbytes: int, rounds: int) -> int:
    """Fewer rounds for large messages (each takes long and varies little): at least 3."""
    return max(3, min(rounds, rounds * (4 << 20) // max(nbytes, 1)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summarise"]:
        summarise(sys.argv[2:])
    else:
        sys.exit(main(sys.argv))
