"""The recommenders: Mult-VAE (Liang et al. 2018) and RecVAE on MovieLens, with the paper's protocol and metrics.

One job per module, in the order a reader meets them:
- movielens: GroupLens's files (every release's layout) and the shipped ml-latest-small;
- split:     the paper's preprocessing and strong-generalisation split, as scipy CSR matrices;
- metrics:   Recall@k and NDCG@k as dawenl/vae_cf defines them, fold-in items never recommended;
- baselines: popularity and EASE, scored by the same metrics code;
- model:     Mult-VAE / Mult-DAE (encoder, decoder with its own Input, composite) and their trainer;
- recvae:    RecVAE (Shenbin et al. 2020): its denser encoder, composite prior and alternating trainer;
- fit:       training on a split with per-epoch validation and the best epoch kept;
- recommend: what the Recommend page asks: lists for picks (z_mean and sampled z), the users' map.
"""
