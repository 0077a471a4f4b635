"""Seed inputs for tools/fuzz.sh: one small valid file of each kind per target, so the fuzzers
start past the magic numbers. Usage: python3 tools/fuzz_seeds.py CORPUS_DIR"""
import gzip, json, os, struct, sys, zlib

root = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# CIFAR-10 (label + 3072 pixels) and CIFAR-100 (coarse, fine + 3072) records.
put("cifar", "two-records", bytes([3]) + bytes(range(256)) * 12 + bytes([7]) + bytes(3072))
put("cifar", "cifar100-record", bytes([1, 9]) + bytes(3072))

# IDX images (2 of 4x4) and labels, raw and gzip.
images = struct.pack(">IIII", 0x803, 2, 4, 4) + bytes(range(32))
labels = struct.pack(">II", 0x801, 2) + bytes([1, 0])
put("idx", "images", images)
put("idx", "labels", labels)
put("idx", "images.gz", gzip.compress(images))


def png(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes((x * 40 + y * 7) % 256 for x in range(w * 3)) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


put("image_folder", "4x4.png", png(4, 4))
put("image_folder", "bomb.png", png(4, 4)[:16] + struct.pack(">II", 100000, 100000) + png(4, 4)[24:])
# A minimal baseline JPEG is long to write by hand; the fuzzer finds JPEG markers from PNGs too.


def safetensors(tensors, meta):
    header, data = {}, b""
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


put("checkpoint", "tiny", safetensors([("model.w", [2, 2], [1, 2, 3, 4]), ("ema.w", [2, 2], [1, 2, 3, 4])], {"format": "ltlab-checkpoint-2", "step": "3", "seed": "0"}))

with open(os.path.join(here, "..", "assets", "presets", "demo-synthetic.toml"), "rb") as f:
    preset = f.read()
put("config", "preset", b"optim.lr=0.001\n" + preset)
put("config", "methods", b"methods.coral.weight=0.02\n" + preset + b"\n[methods.coral]\n[methods.oc]\nmode = \"t2h\"\n")

record = {"step": 1, "losses": {"mse": 1.0, "total": 1.0}, "loss_by_t": [1.0] + [None] * 9, "lr": 0.0002, "grad_norm": 1.5,
          "images_per_s": 30.0, "uncond_batch": False, "loss_by_class": [1.0, None], "transfers": None}
put("metrics", "two-lines", (json.dumps(record) + "\n" + json.dumps(dict(record, step=2)) + "\n").encode())


def npy(descr, shape, raw):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw


put("npy", "features", npy("<f4", "(2, 3)", struct.pack("<6f", 1, 2, 3, 4, 5, 6)))
put("npy", "labels", npy("<i8", "(3,)", struct.pack("<3q", 0, 2, 1)))

# A pytorch-fid-like .pth holding the stem's first block (needs torch; without it the pth
# fuzzer starts from an empty corpus and finds the zip magic itself, more slowly).
try:
    import io
    import torch
    block = {"Conv2d_1a_3x3.conv.weight": torch.randn(32, 3, 3, 3), "Conv2d_1a_3x3.bn.weight": torch.ones(32),
             "Conv2d_1a_3x3.bn.bias": torch.zeros(32), "Conv2d_1a_3x3.bn.running_mean": torch.zeros(32),
             "Conv2d_1a_3x3.bn.running_var": torch.ones(32), "Conv2d_1a_3x3.bn.num_batches_tracked": torch.tensor(0)}
    buf = io.BytesIO()
    torch.save(block, buf)
    put("pth", "stem", buf.getvalue())
    buf = io.BytesIO()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in block.items()}, buf)
    put("pth", "stem-f16", buf.getvalue())
except ImportError:
    print("fuzz_seeds: no torch, so no .pth seed", file=sys.stderr)
