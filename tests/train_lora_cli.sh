#!/bin/sh
# train_lora_cli.sh SMALLCODER MAKE_SHARDS — `train --lora` (issue 16): a LoRA run on a frozen base writes PEFT
# adapter checkpoints (adapter_config.json + adapter_model.safetensors + optimizer + trainer state, no base
# weights), its loss falls, an interrupted and resumed run (dropout on) ends bit-identical to an uninterrupted one,
# `--teacher-logits` trains through the same loss hook, the merged checkpoint evaluates as the adapter does, and bad
# input (a preset, --device cuda without a device, another base's adapter, a changed rank on resume) is one line with exit 1.
set -u
sc=$1
mk=$2
dir=$(mktemp -d /tmp/sc_train_lora.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/cli_expect.sh"
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }

cd "$dir" || exit 1
"$mk" data 512 40000 6000 >/dev/null || { echo "FAIL: make shards"; exit 1; }
# the base: a tiny model pretrained briefly; the LoRA runs go on learning the same corpus with it frozen
$sc train --data data --preset tiny --seq 64 --grad-accum 1 --lr 3e-3 --steps 30 --eval-every 0 --threads 1 -q \
  --out pre 2>err || { echo "FAIL: pretrain"; cat err; exit 1; }
base=pre/ckpt-30

common="--data data --model $base --lora 4 --lora-dropout 0.1 --lora-targets q,k,v,o,gate,up,down --seq 64
        --grad-accum 2 --lr 1e-2 --warmup 2 --steps 24 --save-every 4 --eval-every 12 --eval-tokens 512 --keep 0
        --threads 1 -q"
$sc train $common --out a 2>err || { fail "LoRA run"; cat err; }
grep -q "LoRA r 4 alpha 8 on q,k,v,o,gate,up,down" err || { fail "start-up line names no LoRA"; cat err; }
for f in adapter_config.json adapter_model.safetensors optimizer.safetensors trainer_state.json; do
  [ -f a/ckpt-24/$f ] || fail "a/ckpt-24 lacks $f"
done
[ -e a/ckpt-24/model.safetensors ] && fail "a LoRA checkpoint holds base weights"
grep -q '"peft_type":[[:space:]]*"LORA"' a/ckpt-24/adapter_config.json || fail "adapter_config.json has no peft_type LORA"
# validation loss on the same 512 tokens: the base's, then the adapted model's at the run's last evaluation
$sc eval --model $base --data data --seq 64 --max-tokens 512 --json --threads 1 >b.out 2>err || { fail "eval base"; cat err; }
bv=$(sed -n 's/.*"loss":\([0-9.]*\).*/\1/p' b.out)
av=$(grep '"type":"eval"' a/metrics.jsonl | tail -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/')
awk -v a="$bv" -v b="$av" 'BEGIN { exit !(b > 0 && b < a - 0.02) }' || fail "LoRA val loss did not fall: $bv -> $av"

# resume: stop at 6 (between saves), continue; bit-identical adapter, moments and losses
$sc train $common --stop-at 6 --out b 2>err || { fail "run b"; cat err; }
$sc train --resume b --threads 1 -q 2>err || { fail "resume b"; cat err; }
for f in adapter_model.safetensors optimizer.safetensors; do
  cmp -s a/ckpt-24/$f b/ckpt-24/$f || fail "resumed $f differs from the uninterrupted run's"
done
[ "$(losses a/metrics.jsonl)" = "$(losses b/metrics.jsonl)" ] || fail "resumed losses differ"

# the merged checkpoint evaluates as the unmerged adapter did in the run's last evaluation (same 512 tokens)
$sc lora merge --model $base --adapter a/ckpt-24 --out merged 2>err || { fail "merge"; cat err; }
$sc eval --model merged --data data --seq 64 --max-tokens 512 --json --threads 1 >m.out 2>err || { fail "eval merged"; cat err; }
mv=$(sed -n 's/.*"loss":\([0-9.]*\).*/\1/p' m.out)
awk -v a="$av" -v b="$mv" 'BEGIN { d = a - b; exit !(a > 0 && d < 1e-4 && d > -1e-4) }' ||
  fail "merged val loss $mv, the adapter's $av"
$sc eval --model $base --lora a/ckpt-24 --data data --seq 64 --max-tokens 512 --json --threads 1 >l.out 2>err ||
  { fail "eval --lora"; cat err; }
lv=$(sed -n 's/.*"loss":\([0-9.]*\).*/\1/p' l.out)
awk -v a="$av" -v b="$lv" 'BEGIN { d = a - b; exit !(a > 0 && d < 1e-6 && d > -1e-6) }' ||
  fail "eval --lora val loss $lv, the run's $av"
echo "val loss on 512 tokens: base $bv, LoRA $av (eval --lora $lv), merged $mv"

# distillation through the loss hook
if $sc teacher --model $base --data data --out kd --context 256 --overlap 64 --threads 1 -q >out 2>err; then
  $sc train --data data --model $base --lora 2 --seq 64 --grad-accum 1 --steps 3 --eval-every 0 --threads 1 -q \
    --teacher-logits kd --out k 2>err || { fail "LoRA + teacher-logits"; cat err; }
  grep -q "distilling from" err || fail "LoRA + teacher-logits: no distillation line"
  [ -f k/ckpt-3/adapter_model.safetensors ] || fail "LoRA + teacher-logits wrote no adapter"
else
  fail "teacher"; cat err
fi

# bad input: one line each
expect 1 "fine-tunes an existing model: give --model" $sc train --data data --preset tiny --lora 4 --out x
# no GPU here: --device cuda fails with the line full training gives (no device, or a build without CUDA)
expect 1 "device cuda: .*CUDA" $sc train --data data --model $base --lora 4 --device cuda --out x
expect 1 "lora-targets: unknown module 'lm_head'" $sc train --data data --model $base --lora 4 --lora-targets q,lm_head --out x
expect 1 "adapter in .* has rank 4" $sc train --resume a --lora 8 --steps 30
expect 1 "adapter in .* has lora_alpha 8" $sc train --resume a --lora-alpha 16 --steps 30
$sc init --preset mini --out mini >/dev/null
expect 1 "adapter_config.json: field base_model_name_or_path" $sc lora merge --model mini --adapter a/ckpt-24 --out y
expect 1 "already exists" $sc lora merge --model $base --adapter a/ckpt-24 --out merged
expect 1 "device cuda: .*CUDA" $sc eval --model $base --lora a/ckpt-24 --data data --device cuda
[ -e x ] || [ -e y ] && fail "a refused run left a directory"
echo "train_lora_cli: $fails failure(s)"
[ $fails -eq 0 ]
