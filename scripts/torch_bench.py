#!/usr/bin/env python3
"""Times torch.nn.functional.scaled_dot_product_attention for `flashattn bench`.

Reads one JSON object on stdin:
  {"dtype": "bfloat16"|"float16", "device": 0, "warmup": 5, "iters": 20,
   "backends": ["flash", "cudnn"],
   "configs": [{"op": "fwd"|"bwd", "batch": 32, "seqlen": 512, "heads": 16, "headDim": 128,
                "causal": false}, ...]}
or decode configs {"op": "decode", "batch": 16, "context": 8192, "headsQ": 32, "headsKV": 8,
"headDim": 128} (one query token per row against a full cache, GQA through enable_gqa; each run
reads a copy of K/V that the previous run did not leave in L2: copies until they span four times
the L2, at most 16), and writes one JSON object on stdout: {"info": {...}, "rows": [{...config, "backend", "ms": [...]}
or {..., "error": "..."}]}. Progress goes to stderr.

Tensors are laid out (batch, seqlen, heads, headDim) like flashattn's and passed to SDPA as
(batch, heads, seqlen, headDim) views, so both read the same memory layout. Each backend is forced
with torch.nn.attention.sdpa_kernel. Times are CUDA events around the timed call only (the backward
row times torch.autograd.grad given a fresh forward graph), after warm-up; the caller takes the median.
"""
import json
import sys


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def main():
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    req = json.load(sys.stdin)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[req["dtype"]]
    device = torch.device("cuda", int(req.get("device", 0)))
    torch.cuda.set_device(device)
    warmup = int(req.get("warmup", 5))
    iters = int(req.get("iters", 20))
    backends = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", None),
    }

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(device),
        "capability": list(torch.cuda.get_device_capability(device)),
    }
    rows = []
    configs = req["configs"]
    total = len(configs) * len(req["backends"])
    step = 0
    for backend_name in req["backends"]:
        backend = backends.get(backend_name)
        for cfg in configs:
            step += 1
            if cfg["op"] == "decode":
                tag = "decode b%d ctx %d" % (cfg["batch"], cfg["context"])
            else:
                tag = "%s d%d s%d %s" % (cfg["op"], cfg["headDim"], cfg["seqlen"], "causal" if cfg["causal"] else "full")
            log("[torch %d/%d] %s %s ..." % (step, total, backend_name, tag))
            if "coldL2" in req:
                cfg = dict(cfg, coldL2=req["coldL2"])
            row = dict(cfg)
            row["backend"] = backend_name
            if backend is None:
                row["error"] = "this torch has no SDPBackend.%s" % backend_name.upper()
                rows.append(row)
                continue
            try:
                timer = time_decode if cfg["op"] == "decode" else time_config
                row["ms"] = timer(torch, F, sdpa_kernel, backend, cfg, dtype, device, warmup, iters)
            except Exception as e:  # unsupported config, OOM, ...: record it and go on
                row["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                log("    failed: " + row["error"])
            rows.append(row)
            torch.cuda.empty_cache()
    json.dump({"info": info, "rows": rows}, sys.stdout)
    sys.stdout.write("\n")


def time_config(torch, F, sdpa_kernel, backend, cfg, dtype, device, warmup, iters):
    b, s, h, d = cfg["batch"], cfg["seqlen"], cfg["heads"], cfg["headDim"]
    causal = bool(cfg["causal"])
    bwd = cfg["op"] == "bwd"

    def make():
        t = torch.randn(b, s, h, d, device=device, dtype=dtype)
        return t.requires_grad_(bwd)

    q, k, v = make(), make(), make()
    dout = torch.randn(b, h, s, d, device=device, dtype=dtype) if bwd else None

    def forward():
        return F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal)

    times = []
    with sdpa_kernel([backend]):
        for i in range(warmup + iters):
            if bwd:
                out = forward()
                torch.cuda.synchronize()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            if bwd:
                torch.autograd.grad(out, (q, k, v), dout)
            else:
                with torch.no_grad():
                    forward()
            end.record()
            end.synchronize()
            if i >= warmup:
                times.append(start.elapsed_time(end))
    del q, k, v, dout
    return times


def time_decode(torch, F, sdpa_kernel, backend, cfg, dtype, device, warmup, iters):
    b, ctx, h, hk, d = cfg["batch"], cfg["context"], cfg["headsQ"], cfg["headsKV"], cfg["headDim"]
    kv_bytes = 2 * b * ctx * hk * d * torch.finfo(dtype).bits // 8
    l2 = torch.cuda.get_device_properties(device).L2_cache_size
    copies = max(1, min(16, -(-4 * l2 // kv_bytes))) if cfg.get("coldL2", True) else 1
    # (batch, seqlen, heads, headDim) memory like flashattn's cache, passed as (b, h, s, d) views.
    q = torch.randn(b, 1, h, d, device=device, dtype=dtype).transpose(1, 2)
    caches = [(torch.randn(b, ctx, hk, d, device=device, dtype=dtype).transpose(1, 2),
               torch.randn(b, ctx, hk, d, device=device, dtype=dtype).transpose(1, 2)) for _ in range(copies)]
    times = []
    with sdpa_kernel([backend]), torch.no_grad():
        for i in range(warmup + iters):
            k, v = caches[i % copies]
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            F.scaled_dot_product_attention(q, k, v, enable_gqa=(h != hk))
            end.record()
            end.synchronize()
            if i >= warmup:
                times.append(start.elapsed_time(end))
    del q, caches
    return times


if __name__ == "__main__":
    main()
