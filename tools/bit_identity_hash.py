# Canonical hashes of a bit-identity run: every checkpoint tensor (by name) and its metadata parsed,
# every sample PNG, and each run's metrics without the wall-clock fields.
import json, struct, hashlib, sys, pathlib
root = pathlib.Path(sys.argv[1])
for p in sorted(root.rglob('*')):
    rel = p.relative_to(root)
    if p.suffix == '.safetensors':
        b = p.read_bytes(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
        meta = {k: (json.loads(v) if v.startswith('{') else v) for k, v in h.pop('__metadata__', {}).items()}
        m = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
        for k in sorted(h):
            m.update(k.encode()); m.update(json.dumps(h[k]['shape']).encode()); m.update(d[slice(*h[k]['data_offsets'])])
        print(m.hexdigest()[:16], rel)
    elif p.suffix == '.png':
        print(hashlib.sha256(p.read_bytes()).hexdigest()[:16], rel)
    elif p.name == 'metrics.jsonl':
        rows = [json.loads(l) for l in p.read_text().splitlines() if l.strip()]
        for r in rows:
            r.pop('images_per_s', None); r.pop('wall_s', None); r.pop('time', None)
        print(hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16], rel)
