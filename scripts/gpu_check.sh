#!/usr/bin/env bash
# The device side of the GPU check: one run on a machine with a GPU, from the repository root,
# with the bundle of scripts/gpu_bundle.py copied there (.gpu):
#
#   scripts/gpu_check.sh [--cpu] [--iters N] [--out DIR] [--bundle DIR] [--budget S]
#                        [--gtest-filter F]
#
# Unpacks the bundle, records the machine (nvidia-smi, driver, CUDA, torch, ldd of the binaries),
# then runs the bundle's plan.txt in order: `caffe time -phase TEST -gpu 0` on every exported net
# (its log beside the net, NAME.log, as the --from-logs readers expect) and, for the whole nets,
# fassst_time (NAME.whole.log: one synchronisation per pass, then every blob against the CPU's),
# scripts/cudnn_probe.py,
# and fassst_layer_tests (gtest XML + log). Each step is time-limited (`timeout`) and the whole
# run keeps within --budget seconds (default 540 on the GPU): a spent budget skips the steps
# left, the least needed ones being last in the plan. Writes OUT/logs.tar.gz (every log, the nets
# and the manifest: what scripts/gpu_report.py reads) and OUT/summary.txt, one line a step.
#
#   --cpu           the same plumbing without a GPU (no -gpu, gtests filtered to CPU cases,
#                   1 iteration unless --iters): how the script is tested on a machine without one
#   --iters N       `caffe time` iterations for every net (default: the plan's, 50 or 20)
#   --out DIR       default $OUT (the device call's output folder)
#   --bundle DIR    default ./.gpu
#   --budget S      seconds for the whole run (default 540 GPU, 3600 --cpu)
#   --gtest-filter  passed to fassst_layer_tests (default: all tests; --cpu: the CPU cases)
#
# The GPU path is UNVERIFIED until it runs on a GPU: so far only --cpu has run
# (tests/gpu_check/test_gpu_bundle.py).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cpu=0 iters="" out="${OUT:-}" bundle="$root/.gpu" budget="" filter=""
while (($#)); do
  case $1 in
    --cpu) cpu=1 ;;
    --iters) iters=${2:-}; shift ;;
    --out) out=${2:-}; shift ;;
    --bundle) bundle=${2:-}; shift ;;
    --budget) budget=${2:-}; shift ;;
    --gtest-filter) filter=${2:-}; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "error: gpu_check.sh: $*" >&2; exit 2; }
[[ -n $out ]] || die "no output folder: give --out DIR or set OUT"
[[ -z $iters || $iters =~ ^[1-9][0-9]*$ ]] || die "--iters '$iters': expected a positive integer"
[[ -z $budget || $budget =~ ^[1-9][0-9]*$ ]] || die "--budget '$budget': expected seconds"
shopt -s nullglob
tars=("$bundle"/bundle.tar.*)
((${#tars[@]} == 1)) || die "$bundle: expected one bundle.tar.* (scripts/gpu_bundle.py), found ${#tars[@]}"
if ((cpu)); then
  budget=${budget:-3600} per_net=600 gtest_limit=600 gpu_flag=() warmup=1
  iters=${iters:-1}
  # CPU cases only: /2 and /3 are the GPU devices of TestDtypesAndDevices in a GPU build, and
  # every GPU-only test has GPU in its name (CPUvsGPU, GPUMatchesCPU, PyramidROIAlignGPUTest)
  filter=${filter:-"-*/2.*:*/3.*:*GPU*"}
else
  budget=${budget:-540} per_net=90 gtest_limit=330 gpu_flag=(-gpu 0) warmup=5
fi
mkdir -p "$out" || die "$out: cannot create the output folder"
out="$(cd "$out" && pwd)"

start=$SECONDS deadline=$((SECONDS + budget)) reserve=15 failed=0
work="$(mktemp -d "${TMPDIR:-/tmp}/fassst_gpu.XXXXXX")" || die "no temporary folder"
trap 'rm -rf "$work"' EXIT
R="$work/results" B="$work/bundle"
mkdir -p "$R"
summary="$R/summary.txt"
note() { echo "$*" | tee -a "$summary"; }
note "gpu_check $(date -u +%FT%TZ) mode $( ((cpu)) && echo cpu || echo gpu) iters ${iters:-plan} budget ${budget}s bundle ${tars[0]##*/}"

# Python's side of this script (python/fassst/gpu_check/device.py): the standard library only.
device_py=(env "PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}" python3 -m fassst.gpu_check.device)
if ! tar -xf "${tars[0]}" -C "$work" 2> "$R/unpack.log"; then
  "${device_py[@]}" unpack "${tars[0]}" "$work" >> "$R/unpack.log" 2>&1 ||
    { cat "$R/unpack.log" >&2; die "cannot unpack ${tars[0]}"; }
fi
cp -r "$B/nets" "$B/bundle.json" "$B/plan.txt" "$B/cudnn_shapes.json" "$R/"

# The bundle's libraries only for its own binaries: python3 and torch keep the machine's.
ldpath="$B/lib"
for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64; do [[ -d $d ]] && ldpath+=":$d"; done
while read -r d; do ldpath+=":$d"; done < <("${device_py[@]}" lib-dirs 2>/dev/null)
benv=(env "LD_LIBRARY_PATH=$ldpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" GLOG_minloglevel=0 GLOG_logtostderr=1)

last_secs=0
# run_step NAME LIMIT LOG CMD...: CMD's output to LOG, killed after LIMIT seconds or when the
# budget (less a reserve for packing) is spent; returns CMD's status, 124 on a timeout, 99 skipped.
run_step() {
  local name=$1 limit=$2 log=$3 left t0 rc
  shift 3
  left=$((deadline - SECONDS - reserve))
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    note "step $name: skipped (the ${budget}s budget is spent)"
    last_secs=0
    return 99
  fi
  t0=$SECONDS
  timeout -k 5 "$limit" "$@" > "$log" 2>&1 < /dev/null
  rc=$?
  last_secs=$((SECONDS - t0))
  ((rc == 0)) || failed=$((failed + 1))
  return $rc
}
status() { case $1 in 0) echo ok ;; 124|137) echo "TIMED OUT after $2s" ;; *) echo "rc $1" ;; esac; }
# count LOG BANNER TAIL: the number on gtest's last "[BANNER] N tests TAIL" line in LOG
count() { sed -n "s/^\[$2\] \([0-9]*\) tests\{0,1\}$3.*/\1/p" "$1" | tail -n 1; }

# ---- the machine ----
{
  echo "== date"; date -u +%FT%TZ
  echo "== uname"; uname -a
  echo "== os"; head -4 /etc/os-release 2>/dev/null
  echo "== cpu"; nproc; grep -m1 "model name" /proc/cpuinfo
  echo "== nvidia-smi"; timeout 30 nvidia-smi 2>&1
  echo "== gpu"; timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
  echo "== nvcc"; timeout 30 /usr/local/cuda/bin/nvcc --version 2>&1
  echo "== python"; timeout 90 "${device_py[@]}" versions 2>&1
  echo "== LD_LIBRARY_PATH of the bundle's binaries"; echo "$ldpath"
  for b in caffe fassst_layer_tests fassst_time; do echo "== ldd bin/$b"; "${benv[@]}" ldd "$B/bin/$b" 2>&1; done
} > "$R/env.txt" 2>&1
"${benv[@]}" timeout 60 "$B/bin/fassst_layer_tests" ${filter:+"--gtest_filter=$filter"} \
  --gtest_list_tests > "$R/gtest_list.txt" 2>&1
gpu="$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
note "machine: ${gpu:-no nvidia-smi}; $(grep -m1 "^torch" "$R/env.txt" || echo "python3: none")"
missing="$(grep "=> not found" "$R/env.txt" | awk '{print $1}' | sort -u | tr '\n' ' ')"
[[ -z $missing ]] || { note "MISSING LIBRARIES for the bundle's binaries: $missing"; failed=$((failed + 1)); }
if ((!cpu)); then
  run_step device_query 30 "$R/device_query.log" "${benv[@]}" "$B/bin/caffe" device_query -gpu 0
  rc=$?; ((rc == 99)) || note "step device_query: $(status $rc $last_secs), ${last_secs}s"
fi

# ---- the plan ----
while read -r -u 3 kind dir n extra_env; do
  case $kind in
    nets)
      its=${iters:-$n}
      # VAR=VALUE words after the iterations: the environment this group is timed with
      read -r -a nenv <<< "${extra_env:-}"
      while read -r -u 4 name; do
        log="$R/nets/$dir/$name.log"
        run_step "$dir/$name" "$per_net" "$log" "${benv[@]}" ${nenv[@]+"${nenv[@]}"} "$B/bin/caffe" time \
          -model "$R/nets/$dir/$name.prototxt" -phase TEST -iterations "$its" ${gpu_flag[@]+"${gpu_flag[@]}"}
        rc=$?
        ((rc == 99)) && continue
        fwd="$(grep -o "Average Forward pass: [0-9.]* ms" "$log" | grep -o "[0-9.]* ms")"
        note "step $dir/$name${extra_env:+ ($extra_env)}: $(status $rc $last_secs), ${last_secs}s${fwd:+, forward $fwd}"
        # a whole net once more without caffe time's per-layer synchronisations, then every blob
        # of one forward against the CPU's (NAME.whole.log); TF32 rounds the GEMMs' inputs
        [[ $dir == bench_* ]] || continue
        wlog="$R/nets/$dir/$name.whole.log" tol=1e-3
        [[ " ${extra_env:-} " == *" FASSST_GPU_TF32=1 "* ]] && tol=3e-2
        run_step "$dir/$name whole" "$per_net" "$wlog" "${benv[@]}" ${nenv[@]+"${nenv[@]}"} \
          "$B/bin/fassst_time" -model "$R/nets/$dir/$name.prototxt" -iterations "$its" \
          -warmup "$warmup" -check_cpu -check_tolerance "$tol" ${gpu_flag[@]+"${gpu_flag[@]}"}
        rc=$?
        ((rc == 99)) && continue
        whole="$(grep -o "median [0-9.]* ms" "$wlog" | grep -o "[0-9.]* ms")"
        worst="$(grep -o "worst relative difference .*" "$wlog")"
        note "step $dir/$name${extra_env:+ ($extra_env)}, fassst_time: $(status $rc $last_secs), ${last_secs}s${whole:+, forward median $whole}${worst:+, vs CPU: $worst}"
      done 4< "$R/nets/$dir/timed.txt"
      ;;
    probe)
      echo "running cudnn_probe ..."
      run_step cudnn_probe 180 "$R/cudnn_probe.log" python3 "$root/scripts/cudnn_probe.py" \
        --shapes "$B/cudnn_shapes.json" --json "$R/cudnn_probe.json"
      rc=$?
      # 3: no torch or no CUDA device; expected without a GPU, a failure with one
      ((cpu && rc == 3)) && failed=$((failed - 1))
      ((rc == 99)) || note "step cudnn_probe: $(status $rc $last_secs), ${last_secs}s: $(tail -n 1 "$R/cudnn_probe.log")"
      ;;
    gtests)
      # A CHECK failing in a test aborts the whole binary (a CUDA error in a kernel never run on
      # a GPU before, say). Then the run is resumed without the tests already started, the
      # aborted one counted as failed: run k writes gtest.k.log / gtest.k.xml (run 1: gtest.*).
      echo "running fassst_layer_tests ${filter:+(filter $filter) }..."
      skip="" gtest_run=1 last_case=""
      while :; do
        sfx=$( ((gtest_run > 1)) && echo ".$gtest_run")
        gfilter=$filter
        if [[ -n $skip ]]; then
          if [[ $gfilter == *-* ]]; then gfilter+=":$skip"; else gfilter="${gfilter:-*}-$skip"; fi
        fi
        run_step "gtests$sfx" "$gtest_limit" "$R/gtest$sfx.log" "${benv[@]}" "$B/bin/fassst_layer_tests" \
          ${gfilter:+"--gtest_filter=$gfilter"} "--gtest_output=xml:$R/gtest$sfx.xml"
        rc=$?
        ((rc == 99)) && break
        ran=$(count "$R/gtest$sfx.log" "==========" " from") passed=$(count "$R/gtest$sfx.log" "  PASSED  " "\\.")
        nfail=$(count "$R/gtest$sfx.log" "  FAILED  " ", listed")
        note "step gtests$sfx: $(status $rc $last_secs), ${last_secs}s: ${ran:-?} ran, ${passed:-?} passed, ${nfail:-0} failed"
        # 0: all passed, 1: some failed; a timeout ends it too; anything else is a crash
        ((rc == 0 || rc == 1 || rc == 124 || rc == 137 || gtest_run == 10)) && break
        started=$(sed -n 's/^\[ RUN      \] //p' "$R/gtest$sfx.log" | tr '\n' ':')
        [[ -n $started ]] || break
        aborted=$(sed -n 's/^\[ RUN      \] //p' "$R/gtest$sfx.log" | tail -n 1)
        skip="${skip:+$skip:}${started%:}" gtest_run=$((gtest_run + 1))
        more=""
        if [[ ${aborted%%.*} == "${last_case:-}" ]]; then  # twice in one case: leave the case
          skip+=":${aborted%%.*}.*" more="; the rest of ${aborted%%.*} is left out"
        fi
        last_case=${aborted%%.*}
        note "step gtests$sfx: aborted in $aborted; resuming without the" \
          "$(tr ':' '\n' <<< "${started%:}" | wc -l) tests it started$more"
      done
      ;;
    *) note "plan.txt: unknown step '$kind'"; failed=$((failed + 1)) ;;
  esac
done 3< "$B/plan.txt"

note "gpu_check done in $((SECONDS - start))s; $failed step(s) failed"
if ! { tar -czf "$out/logs.tar.gz" -C "$work" results && cp "$summary" "$out/summary.txt"; }; then
  die "cannot write $out/logs.tar.gz"
fi
echo "wrote $out/logs.tar.gz ($(du -k "$out/logs.tar.gz" | cut -f1) KiB) and $out/summary.txt"
((failed == 0))
