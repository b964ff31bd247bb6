#!/usr/bin/env bash
# Retrain the models shipped in vae_core/pretrained/ on the full MNIST with the project's own command.
# Each model's metadata records this exact command, its epochs, seed and test metrics.
# Usage: VAE_LAB_DATA_DIR=/path/to/mnist scripts/train_shipped_models.sh [name ...]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VAE_LAB_DATA_DIR:?set VAE_LAB_DATA_DIR to the folder with the four MNIST .gz files}"
work=$(mktemp -d)
export VAE_LAB_HOME="$work"

declare -A ARGS=(
  [mlp_vae_2d]="--model mlp_vae --latent-dim 2 --hidden 512 --epochs 30 --lr 0.001"
  [conv_vae_32d]="--model conv_vae --latent-dim 32 --hidden 256 --epochs 30 --lr 0.001"
  [conv_dae]="--model conv_dae --latent-dim 16 --epochs 15 --noise keras --lr 0.001"
  [cvae_2d]="--model cvae --latent-dim 2 --hidden 512 --epochs 30 --lr 0.001"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(mlp_vae_2d cvae_2d conv_dae conv_vae_32d)
for name in "${names[@]}"; do
  echo "== $name: python -m vae_core.train ${ARGS[$name]} --dataset mnist --seed 0 --save-as $name"
  # shellcheck disable=SC2086
  python -m vae_core.train ${ARGS[$name]} --dataset mnist --seed 0 --save-as "$name" --run-dir "$work/runs/$name"
  cp "$work/models/$name.keras" "$work/models/$name.json" vae_core/pretrained/
done
echo "models written to vae_core/pretrained/ (scratch: $work)"
