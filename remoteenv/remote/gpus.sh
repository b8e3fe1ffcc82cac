# remoteenv gpus: the host's GPUs and who runs on them, in one round trip (lib.sh's gpu_report).
# Output: "nvidia-smi<TAB>1|0", then gpu_report's lines. Never fails as a whole.
set -u
export LC_ALL=C
if command -v nvidia-smi >/dev/null 2>&1; then printf 'nvidia-smi\t1\n'; else printf 'nvidia-smi\t0\n'; fi
gpu_report
