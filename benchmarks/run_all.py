"""The side-by-side benchmark: gtnjax vs the PyTorch peer, one machine, one run.

For each T it runs, back to back and each in its own process (so each peak
RSS belongs to one configuration), gtnjax's meta-iteration
(benchmarks/meta_iteration.py) and the peer's (../shared/peers/gtn_torch_peer.py
under benchmarks/.venv-peer, made by benchmarks/setup_peer.sh). It also
measures the machine's float32 matmul peak (XLA and torch), the peer's FLOPs
(torch's FlopCounterMode) and the per-primitive microbenchmarks
(benchmarks/ops.py), then prints Markdown tables and writes every raw result
to benchmarks/results/<timestamp>/.

Usage:
  benchmarks/setup_peer.sh                        # once
  python benchmarks/run_all.py                    # T = 8, 32, 64 (~25-40 min on 2 cores)
  python benchmarks/run_all.py --quick            # T = 8 only, fewer runs (~5 min)

The peer's plain autograd mode needs ~14 GiB at T=32 and runs out of memory at
T=64 on a 24 GiB machine (../shared/peers/README.md), so above --peer-ckpt-from
(default 64) the peer runs with --ckpt (per-step recomputation), its
memory-bounded mode; the table says which.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
PEER = (REPO / ".." / "shared" / "peers").resolve()


def run(cmd, log, env=None, timeout=3600):
  print("$ " + " ".join(map(str, cmd)), flush=True)
  t0 = time.perf_counter()
  proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env,
                        timeout=timeout)
  log.write(f"$ {' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}\n")
  log.flush()
  result = None
  for line in proc.stdout.splitlines():
    if line.startswith("RESULT "):
      result = json.loads(line[len("RESULT "):])
    elif line.startswith('{"inner"') and '"gflop"' in line:  # the peer's --flops line
      result = json.loads(line)
  if proc.returncode != 0 or result is None:
    print(f"  failed (rc={proc.returncode}) after {time.perf_counter() - t0:.0f} s: "
          f"{proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else ''}", flush=True)
    return {"failed": True, "rc": proc.returncode}
  print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
  return result


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--inner", type=int, nargs="+", default=[8, 32, 64])
  ap.add_argument("--quick", action="store_true", help="T=8 only, 3 iterations, quick ops")
  ap.add_argument("--remat", default="block")
  ap.add_argument("--peer-python", default=str(HERE / ".venv-peer" / "bin" / "python"))
  ap.add_argument("--peer-ckpt-from", type=int, default=64)
  ap.add_argument("--no-peer", action="store_true")
  ap.add_argument("--no-ops", action="store_true")
  ap.add_argument("--report", default=None, metavar="RESULTS_JSON",
                  help="only print the tables of an earlier run's results.json")
  ap.add_argument("--iters-override", type=int, default=None,
                  help="meta-iterations per configuration (default: 4/3/2 for T<=8/<=32/more)")
  args = ap.parse_args()
  if args.report:
    print(report(json.load(open(args.report))))
    return
  inner = [8] if args.quick else args.inner

  def iters_for(t):  # keep the whole harness within ~25-40 minutes on 2 cores
    if args.iters_override:
      return args.iters_override
    if args.quick:
      return 3
    return 4 if t <= 8 else 3 if t <= 32 else 2

  out_dir = HERE / "results" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  out_dir.mkdir(parents=True, exist_ok=True)
  log = open(out_dir / "log.txt", "w")
  env = dict(os.environ)
  results = {"xla_flags": env.get("XLA_FLAGS", ""), "cpu_count": os.cpu_count(),
             "uname": " ".join(os.uname()), "pairs": []}
  try:
    results["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
  except OSError:
    pass
  have_peer = not args.no_peer and pathlib.Path(args.peer_python).exists()
  if not args.no_peer and not have_peer:
    print(f"no peer interpreter at {args.peer_python}: run benchmarks/setup_peer.sh", flush=True)

  results["matmul_jax"] = run([sys.executable, HERE / "matmul_peak_jax.py"], log, env)
  if have_peer:
    p = subprocess.run([args.peer_python, PEER / "matmul_peak.py", "2048", "4096"],
                       capture_output=True, text=True)
    results["matmul_torch"] = p.stdout
    log.write(p.stdout + p.stderr)
    flops = run([args.peer_python, PEER / "gtn_torch_peer.py", "--inner", "4", "--flops"], log)
    results["peer_gflop_per_step"] = flops.get("gflop", float("nan")) / 4

  for t in inner:
    n = iters_for(t)
    pair = {"inner": t}
    pair["gtnjax"] = run([sys.executable, HERE / "meta_iteration.py", "--inner", t,
                          "--iters", n, "--warmup", 1, "--remat", args.remat], log, env)
    if have_peer:
      cmd = [args.peer_python, PEER / "gtn_torch_peer.py", "--inner", t, "--iters", n,
             "--warmup", 1]
      if t >= args.peer_ckpt_from:
        cmd.append("--ckpt")
      pair["peer"] = run(cmd, log)
    results["pairs"].append(pair)
    json.dump(results, open(out_dir / "results.json", "w"), indent=1)

  if not args.no_ops:
    cmd = [sys.executable, HERE / "ops.py", "--json", out_dir / "ops.json", "--reps", "5"]
    if args.quick:
      cmd.append("--quick")
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env)
    results["ops_table"] = p.stdout
    log.write(p.stdout + p.stderr)
  try:
    results["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
  except OSError:
    pass
  json.dump(results, open(out_dir / "results.json", "w"), indent=1)
  print(report(results))
  (out_dir / "report.md").write_text(report(results))
  print(f"raw results in {out_dir}")


def report(r):
  peak = max((v["best_gflops"] for k, v in r.get("matmul_jax", {}).items()
              if isinstance(v, dict)), default=float("nan"))
  lines = [f"XLA_FLAGS={r['xla_flags']!r}; load average at start/end: "
           f"{r.get('loadavg_start')} / {r.get('loadavg_end')}",
           f"XLA float32 matmul peak (best of 2048/4096): {peak:.0f} GFLOP/s", ""]
  if "matmul_torch" in r:
    lines += ["torch matmul_peak.py:", "```", r["matmul_torch"].strip(), "```", ""]
  lines += ["| T | gtnjax s/iter median [min-max] | peer s/iter median [min-max] | peer/gtnjax "
            "| gtnjax peak RSS | peer peak RSS | gtnjax compile s | GFLOP/iter "
            "| gtnjax GFLOP/s | % of matmul peak | XLA cost analysis GFLOP |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
  for pair in r["pairs"]:
    g, p = pair.get("gtnjax", {}), pair.get("peer", {})
    if g.get("failed"):
      gs = "failed"
      ratio = rate = frac = comp = gfl = grss = "-"
    else:
      gs = f"{g['median_s']:.2f} [{g['min_s']:.2f}-{g['max_s']:.2f}] (n={g['n_timed']})"
      grss = f"{g['peak_rss_mib'] / 1024:.2f} GiB"
      comp = f"{g['compile_s']:.1f}"
      # The algorithm's FLOPs (torch's count of the peer, which does the
      # same arithmetic; gtnjax's per-step remat adds a forward on top).
      # XLA's cost analysis counts a while-loop body once, whatever T is.
      algo = r.get("peer_gflop_per_step", float("nan")) * pair["inner"]
      gfl = f"{algo:.0f}"
      rate = algo / g["median_s"]
      frac = f"{100 * rate / peak:.0f}%"
      rate = f"{rate:.0f}"
    if not p:
      ps, prss, ratio = "not run", "-", "-"
    elif p.get("failed"):
      ps, prss, ratio = "failed", "-", "-"
    else:
      ps = (f"{p['median_s']:.2f} [{p['min_s']:.2f}-{p['max_s']:.2f}] (n={p['n_timed']}"
            f"{', ckpt' if 'ckpt' in p.get('impl', '') else ''})")
      prss = f"{p['peak_rss_loop_mib'] / 1024:.2f} GiB"
      ratio = "-" if g.get("failed") else f"{p['median_s'] / g['median_s']:.2f}x"
    lines.append(f"| {pair['inner']} | {gs} | {ps} | {ratio} | {grss} | {prss} | {comp} "
                 f"| {gfl} | {rate} | {frac} | "
                 f"{'-' if g.get('failed') else format(g['flops'] / 1e9, '.0f')} |")
  if "peer_gflop_per_step" in r:
    lines.append(f"\nPeer FLOPs (torch FlopCounterMode): {r['peer_gflop_per_step']:.1f} GFLOP per "
                 "inner step.")
  if "ops_table" in r:
    lines += ["", "Per-primitive microbenchmarks (ms, medians):", "```", r["ops_table"].strip(),
              "```"]
  return "\n".join(lines)


if __name__ == "__main__":
  main()
