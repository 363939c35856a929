#!/usr/bin/env bash
# Train the bundled model pretrained/pop2jazz.pt, as pretrained/README.md records it: one command, which also
# carries on a run that was stopped (pass --stop-after N to train in parts). On a 2-core CPU it takes hours.
#
#     bash pretrained/train.sh                  # the whole recipe, or the rest of it
#     bash pretrained/train.sh --stop-after 20  # 20 more epochs, then stop; run it again to carry on
#
# Data: the 20 GTZAN excerpts in $POP2JAZZ_CLIPS (default ../shared/audio/gtzan_mini), 3 of 10 songs per genre
# held out (the split of experiments/ab.py). After training: the run's generator-only export becomes
# pretrained/pop2jazz.pt and evaluate.py's figures on the held-out songs pretrained/evaluation.json.
set -euo pipefail
cd "$(dirname "$0")/.."
clips=${POP2JAZZ_CLIPS:-../shared/audio/gtzan_mini}
data=data/bundled
# the paper's recipe at the CPU size: none of the sound-quality levers won the A/B (README, "What makes it sound
# better"); the paper's 200 epochs, of 18 steps each (one per training chunk of the larger genre): 3,600 steps
recipe=(--data "$data" --name bundled --width 16 --n-blocks 3 --epochs 200 --eval-every 10 --griffin-lim-iters 16)

[ -d "$data/pop_val" ] || uv run audio_preprocessing.py --pop "$clips/pop" --jazz "$clips/jazz" --output "$data" \
    --val-fraction 0.3 --seed 0
if [ -f checkpoints/bundled/latest.pt ]; then
    uv run train.py "${recipe[@]}" --resume "$@"
else
    uv run train.py "${recipe[@]}" "$@"
fi
cp checkpoints/bundled/generators.pt pretrained/pop2jazz.pt
uv run evaluate.py --checkpoint pretrained/pop2jazz.pt --data "$data" -o samples/bundled/eval_pretrained
cp samples/bundled/eval_pretrained/figures.json pretrained/evaluation.json
echo "pretrained/pop2jazz.pt and pretrained/evaluation.json updated"
