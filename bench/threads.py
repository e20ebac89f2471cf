import sys, time, torch, numpy as np
from scarlet_moon.training.config import DEFAULT
from scarlet_moon.training.state import build_state
from scarlet_moon.training.loop import train_step
from scarlet_moon.data.sprites import load_sprites
from scarlet_moon.diffusion.scaling import to_model_range
from scarlet_moon.training.state import schedule_of
torch.set_num_threads(int(sys.argv[1]))
cfg = DEFAULT
ds = load_sprites(None)
x = torch.from_numpy(to_model_range(ds.images)); y = torch.from_numpy(ds.labels)
abar = torch.from_numpy(schedule_of(cfg).alphas_cumprod()).float()
st = build_state(cfg, channels=4, size=16, num_classes=6, device="cpu")
for _ in range(3): train_step(st, cfg, x, y, abar, 6)
t = time.perf_counter(); n = int(sys.argv[2])
for _ in range(n): train_step(st, cfg, x, y, abar, 6)
print(f"threads {sys.argv[1]}: {(time.perf_counter()-t)/n*1000:.0f} ms/step", flush=True)
