#!/usr/bin/env python3
"""FashionNet in PyTorch eager: the reference the tch trainer is timed against.

Same topology, parameter names, landmark pooling (tent/matmul form), losses
and optimizer as `trainer` (see deepfashion/src/contract.rs). It times
training steps on random data of the requested config and batch size and
prints one JSON line:

    python bench/fashionnet_reference.py --config tiny --batch 32 --steps 20 \
        --warmup 3 --threads 2 --device cpu [--categories 50 --attributes 1000]

`--config` is a preset name (paper, edge, tiny) or a JSON file in the
contract's ModelConfig format. On CUDA it also reports the peak allocated
memory and can run with autocast (`--amp`).
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "paper": dict(name="paper", input_size=224, widths=[64, 128, 256, 512, 512], batch_norm=False,
                  global_pool=False, fc_size=4096, num_categories=50, num_attributes=1000,
                  embedding_dim=128, pool_grid=3, dropout=0.5),
    "edge": dict(name="edge", input_size=192, widths=[32, 64, 128, 256, 256], batch_norm=True,
                 global_pool=True, fc_size=512, num_categories=50, num_attributes=1000,
                 embedding_dim=128, pool_grid=3, dropout=0.2),
    "tiny": dict(name="tiny", input_size=96, widths=[8, 16, 32, 48, 48], batch_norm=True,
                 global_pool=True, fc_size=128, num_categories=50, num_attributes=1000,
                 embedding_dim=64, pool_grid=3, dropout=0.1),
}


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, bn):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1) if bn else None

    def forward(self, x):
        y = F.conv2d(x, self.weight, self.bias, padding=1)
        if self.bn is not None:
            y = self.bn(y)
        return F.relu(y)


def convs(cfg):
    w = cfg["widths"]
    out, cin = [], 3
    for b, n in [(1, 2), (2, 2), (3, 3), (4, 3)]:
        for i in range(1, n + 1):
            out.append((f"conv{b}_{i}", cin, w[b - 1]))
            cin = w[b - 1]
    return out


def landmark_pool(f4, lm, pv, g):
    n, c, h, w = f4.shape
    l = lm.shape[1]
    d = torch.arange(g, dtype=f4.dtype, device=f4.device) - (g - 1) / 2.0
    u = lm[..., 0] * w - 0.5
    v = lm[..., 1] * h - 0.5
    cols = torch.arange(w, dtype=f4.dtype, device=f4.device)
    rows = torch.arange(h, dtype=f4.dtype, device=f4.device)
    wx = F.relu(1 - (u.view(n, l, 1, 1) + d.view(1, 1, g, 1) - cols.view(1, 1, 1, w)).abs())
    wy = F.relu(1 - (v.view(n, l, 1, 1) + d.view(1, 1, g, 1) - rows.view(1, 1, 1, h)).abs())
    wt = (wy.view(n, l, g, 1, h, 1) * wx.view(n, l, 1, g, 1, w)).reshape(n, l * g * g, h * w)
    feats = f4.flatten(2).transpose(1, 2)
    pooled = torch.matmul(wt, feats).view(n, l, g * g, c).amax(2)
    return (pooled * pv.view(n, l, 1)).reshape(n, l * c)


class FashionNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        bn = cfg["batch_norm"]
        w = cfg["widths"]
        for name, cin, cout in convs(cfg):
            self.add_module(name, ConvBlock(cin, cout, bn))
        for br in ["pose", "global"]:
            cin = w[3]
            for i in range(1, 4):
                self.add_module(f"conv5_{i}_{br}", ConvBlock(cin, w[4], bn))
                cin = w[4]
        head = w[4] if cfg["global_pool"] else w[4] * (cfg["input_size"] // 32) ** 2
        fc = cfg["fc_size"]
        for name, fin, fout in [("fc6_pose", head, fc), ("fc7_pose", fc, fc), ("landmarks", fc, 16),
                                ("visibility", fc, 24), ("fc6_global", head, fc),
                                ("fc6_local", 8 * w[3], fc), ("fc7_fusion", 2 * fc, fc),
                                ("category", fc, cfg["num_categories"]),
                                ("attributes", fc, cfg["num_attributes"]),
                                ("embedding", fc, cfg["embedding_dim"])]:
            self.add_module(name, nn.Linear(fin, fout))

    def head_pool(self, x):
        if self.cfg["global_pool"]:
            return x.mean((2, 3))
        return F.max_pool2d(x, 2).flatten(1)

    def fc(self, layer, x):
        return F.dropout(F.relu(layer(x)), self.cfg["dropout"], self.training)

    def forward(self, x, detach_pool=False):
        for name, _, _ in convs(self.cfg):
            x = getattr(self, name)(x)
            if name in ("conv1_2", "conv2_2", "conv3_3"):
                x = F.max_pool2d(x, 2)
        f4 = x
        p4 = F.max_pool2d(f4, 2)
        n = x.shape[0]
        pose = p4
        for i in range(1, 4):
            pose = getattr(self, f"conv5_{i}_pose")(pose)
        pose = self.fc(self.fc7_pose, self.fc(self.fc6_pose, self.head_pool(pose)))
        lm = torch.sigmoid(self.landmarks(pose)).view(n, 8, 2)
        vis = self.visibility(pose).view(n, 8, 3)
        pv = vis.float().softmax(-1)[..., 0].to(f4.dtype)
        lmp = lm.to(f4.dtype)
        if detach_pool:
            lmp, pv = lmp.detach(), pv.detach()
        local = self.fc(self.fc6_local, landmark_pool(f4, lmp, pv, self.cfg["pool_grid"]))
        g = p4
        for i in range(1, 4):
            g = getattr(self, f"conv5_{i}_global")(g)
        g = self.fc(self.fc6_global, self.head_pool(g))
        fused = self.fc(self.fc7_fusion, torch.cat([g, local], 1))
        emb = F.normalize(self.embedding(fused).float(), dim=-1)
        return lm, vis, self.category(fused), self.attributes(fused), emb


def masked_mean(v, m):
    m = m.float()
    return (v * m).sum() / m.sum().clamp_min(1.0)


def losses(out, t, pos_weight, margin=0.3, smoothing=0.05):
    lm, vis, cat, att, emb = out
    l_lm = masked_mean((lm.float() - t["lm"]).square().sum(-1), t["lm_mask"])
    lp = vis.float().log_softmax(-1)
    l_vis = masked_mean(-lp.gather(2, t["vis"].unsqueeze(-1)).squeeze(-1), t["present"])
    lpc = cat.float().log_softmax(-1)
    nll = -lpc.gather(1, t["cat"].unsqueeze(-1)).squeeze(-1)
    l_cat = masked_mean(nll * (1 - smoothing) - lpc.mean(-1) * smoothing, t["has_cat"])
    l_att = masked_mean(F.binary_cross_entropy_with_logits(att.float(), t["att"], pos_weight=pos_weight,
                                                           reduction="none").mean(-1), t["has_att"])
    n = emb.shape[0]
    sq = emb.square().sum(1)
    d = (sq.view(n, 1) + sq.view(1, n) - 2 * emb @ emb.T).clamp_min(1e-12).sqrt()
    same = t["item"].view(n, 1) == t["item"].view(1, n)
    eye = torch.eye(n, dtype=torch.bool, device=emb.device)
    pos = same & ~eye
    neg = ~same
    hp = (d * pos.float()).amax(1)
    hn = (d + (~neg).float() * 1e4).amin(1)
    l_tri = masked_mean(F.relu(hp - hn + margin), pos.any(1) & neg.any(1))
    return l_lm * 10 + l_vis + l_cat + l_att + l_tri


def random_batch(cfg, n, device, gen):
    s = cfg["input_size"]
    k = 4
    return dict(
        image=torch.randn(n, 3, s, s, generator=gen).to(device),
        lm=torch.rand(n, 8, 2, generator=gen).to(device),
        lm_mask=(torch.rand(n, 8, generator=gen) > 0.3).float().to(device),
        present=torch.ones(n, 8).to(device),
        vis=torch.randint(0, 3, (n, 8), generator=gen).to(device),
        cat=torch.randint(0, cfg["num_categories"], (n,), generator=gen).to(device),
        has_cat=torch.ones(n, dtype=torch.bool).to(device),
        att=(torch.rand(n, cfg["num_attributes"], generator=gen) > 0.99).float().to(device),
        has_att=torch.ones(n, dtype=torch.bool).to(device),
        item=(torch.arange(n) // k).to(device),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--categories", type=int)
    ap.add_argument("--attributes", type=int)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.config in PRESETS:
        cfg = dict(PRESETS[a.config])
    else:
        with open(a.config) as f:
            cfg = json.load(f)
    if a.categories:
        cfg["num_categories"] = a.categories
    if a.attributes:
        cfg["num_attributes"] = a.attributes
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = FashionNet(cfg).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=a.amp and dev.type == "cuda")
    pos_weight = torch.full((cfg["num_attributes"],), 20.0, device=dev)
    gen = torch.Generator().manual_seed(0)
    batch = random_batch(cfg, a.batch, dev, gen)

    def step():
        with torch.autocast(dev.type, enabled=a.amp and dev.type == "cuda"):
            out = model(batch["image"])
        loss = losses(out, batch, pos_weight)
        opt.zero_grad(set_to_none=False)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    loss.item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    res = dict(impl="pytorch", torch=torch.__version__, config=cfg["name"], batch=a.batch, steps=a.steps,
               threads=torch.get_num_threads(), device=str(dev), ms_per_step=1000 * dt / a.steps,
               images_per_s=a.batch * a.steps / dt, loss=float(loss))
    if dev.type == "cuda":
        res["peak_gpu_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(res))


if __name__ == "__main__":
    main()
