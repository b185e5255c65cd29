# CRD's loss and memory update written from the formula (shared/KD_LOSSES.md, CRD;
# mdistiller's ContrastMemory + ContrastLoss), for tests/test_crd.cpp. It receives the
# same embed weights, memory banks, Z values and contrast indices as the C++ objective
# and returns the loss (and L_s, L_t), its gradients, the updated banks and Z.
# Several cases travel in one call as "<case>/<name>" keys.
import torch

from reference_io import main


def embed(x, weight, bias):
    y = torch.nn.functional.linear(x.reshape(x.shape[0], -1), weight, bias)
    return y / y.pow(2).sum(1, keepdim=True).pow(0.5)


def nce(p, n):
    # p: [B, K+1], column 0 the positive; noise distribution Pn = 1/N, m = K.
    eps = 1e-7
    m = p.shape[1] - 1
    mpn = m / float(n)
    log_d1 = torch.log(p[:, 0] / (p[:, 0] + mpn + eps))
    log_d0 = torch.log(torch.full_like(p[:, 1:], mpn) / (p[:, 1:] + mpn + eps))
    return -(log_d1.sum() + log_d0.sum()) / p.shape[0]


def one_case(d):
    temperature = d["temperature"].item()
    momentum = d["momentum"].item()
    update_state = bool(d["update_state"].item())
    pooled_s = d["pooled_s"].clone().requires_grad_(True)
    pooled_t = d["pooled_t"].clone().requires_grad_(True)
    params = {k: d[k].clone().requires_grad_(True)
              for k in ("embed_s.weight", "embed_s.bias", "embed_t.weight", "embed_t.bias")}
    mem_s, mem_t = d["memory_s"].clone(), d["memory_t"].clone()
    z_s, z_t = d["z_s"].item(), d["z_t"].item()
    idx = d["idx"]
    n = mem_s.shape[0]

    v_s = embed(pooled_s, params["embed_s.weight"], params["embed_s.bias"])
    # The teacher runs under no_grad in the reference.
    v_t = embed(pooled_t.detach(), params["embed_t.weight"], params["embed_t.bias"])
    # Scores against the OTHER network's memory, gathered rows detached.
    e_s = torch.exp(torch.einsum("bkd,bd->bk", mem_t[idx].detach(), v_s) / temperature)
    e_t = torch.exp(torch.einsum("bkd,bd->bk", mem_s[idx].detach(), v_t) / temperature)
    if z_s < 0:
        z_s = e_s.detach().mean().item() * n
    if z_t < 0:
        z_t = e_t.detach().mean().item() * n
    loss_s = nce(e_s / z_s, n)
    loss_t = nce(e_t / z_t, n)
    loss = loss_s + loss_t
    grads = torch.autograd.grad(loss, [pooled_s, pooled_t] + list(params.values()), allow_unused=True)

    out = {"loss": loss.detach(), "loss_s": loss_s.detach(), "loss_t": loss_t.detach()}
    for name, g in zip(["pooled_s", "pooled_t"] + list(params), grads):
        out["grad_" + name] = torch.zeros_like(d[name]) if g is None else g
    if update_state:
        y = idx[:, 0]
        with torch.no_grad():
            for mem, v in ((mem_s, v_s), (mem_t, v_t)):
                rows = momentum * mem[y] + (1 - momentum) * v.detach()
                mem[y] = rows / rows.pow(2).sum(1, keepdim=True).pow(0.5)
        out["z_s"] = torch.tensor([z_s], dtype=torch.float64)
        out["z_t"] = torch.tensor([z_t], dtype=torch.float64)
    else:
        out["z_s"], out["z_t"] = d["z_s"].clone(), d["z_t"].clone()
    out["memory_s"], out["memory_t"] = mem_s, mem_t
    return out


def crd(inputs):
    cases = sorted({k.split("/", 1)[0] for k in inputs})
    out = {}
    for c in cases:
        d = {k.split("/", 1)[1]: v for k, v in inputs.items() if k.startswith(c + "/")}
        for k, v in one_case(d).items():
            out[c + "/" + k] = v
    return out


if __name__ == "__main__":
    main({"crd": crd})
