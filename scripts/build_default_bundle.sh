#!/usr/bin/env bash
# Builds the embedded default bundle (heisd_ros/bundles/default) from scratch, as shipped:
#   1. demonstrations of the three Panda task families with the scripted experts
#      (seeds 0..N-1; one rosbag2 bag per episode, 2 cameras at 128 px), plus lift
#      demonstrations with noise on the executed arm actions (seeds 300+, DART: the
#      bags record the expert's corrections, so the policy learns to recover),
#   2. heisd build-bundle: train the VLA, distil the drafter, build the retrieval cache,
#      calibrate the fused metric and tau on held-out demonstrations (2 per task),
#      then evaluate AR closed loop on held-out seeds 1000+ (never training seeds).
# The lift expert (heisd_ros/sim/experts.py, expert version 3) squares the wrist up at
# the hover point; the VLA sees 96 px camera images (docs/evaluation.md says why).
# Seeded and resumable (heisd collect skips complete episodes). Run from the repository root:
#   scripts/build_default_bundle.sh            # DATA=/tmp/heisd_default_demos OUT=heisd_ros/bundles/default
set -euo pipefail
DATA=${DATA:-/tmp/heisd_default_demos}
OUT=${OUT:-heisd_ros/bundles/default}
EVAL_EPISODES=${EVAL_EPISODES:-"lift=10 nut=2 sort=2"}
HEISD=${HEISD:-heisd}
start=$(date +%s)
"$HEISD" collect --task lift --episodes 152 --seed 0 --out "$DATA"
"$HEISD" collect --task lift --episodes ${NOISY:-100} --seed 300 --action-noise 0.1 --out "$DATA"
"$HEISD" collect --task nut --episodes 14 --seed 0 --out "$DATA"
"$HEISD" collect --task sort --episodes 12 --seed 0 --out "$DATA"
collected=$(date +%s)
"$HEISD" build-bundle --data "$DATA" --out "$OUT" --force --tasks lift nut sort --holdout 2 \
  --steps ${STEPS:-10000} --batch-size 64 --seed 0 --proprio-noise ${PROPRIO_NOISE:-0.5} --image-size ${IMAGE_SIZE:-96} --drafter-steps 1500 --drafter-seed 1 --max-error ${MAX_ERROR:-9} \
  --eval-episodes $EVAL_EPISODES --eval-seed-start 1000 --eval-methods ar
end=$(date +%s)
echo "collection: $(( (collected - start) / 60 )) min, bundle build + evaluation: $(( (end - collected) / 60 )) min"
du -sh "$OUT"
