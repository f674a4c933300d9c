"""Writes tiny.npz, a checkpoint in DeepMind's published format (checkpoint.dump of
graphcast.CheckPoint: np.savez of the dataclass flattened with ':' between keys,
tuples as ':<index>') for a tiny GraphCast: mesh 1, latent 4, 2 message-passing
steps, 30 deg grid, levels (500, 850), targets 2m_temperature and temperature,
forcings toa_incident_solar_radiation and year_progress_sin, static land_sea_mask,
two input frames. Every weight is distinct (a counter), so a test can check that
each landed in the right gc parameter. Run from this folder with NumPy.
"""
import numpy as np

LATENT, STEPS, IN, OUT = 4, 2, 16, 3
params = {}
counter = [0]


def mlp(module, fan_in, out, layer_norm=True):
    for i, (a, b) in enumerate([(fan_in, LATENT), (LATENT, out)]):
        w = (np.arange(a * b, dtype=np.float32).reshape(a, b) + counter[0]) * 1e-3
        counter[0] += a * b
        params[f"{module}_mlp/~/linear_{i}"] = {"w": w, "b": np.full(b, counter[0] * 1e-3, np.float32)}
        counter[0] += 1
    if layer_norm:
        params[f"{module}_layer_norm"] = {"scale": np.full(out, 1 + counter[0] * 1e-3, np.float32),
                                          "offset": np.full(out, counter[0] * 1e-4, np.float32)}
        counter[0] += 1


g2m, mesh, m2g = ("grid2mesh_gnn/~_networks_builder/", "mesh_gnn/~_networks_builder/",
                  "mesh2grid_gnn/~_networks_builder/")
mlp(g2m + "encoder_edges_grid2mesh", 4, LATENT)
mlp(g2m + "encoder_nodes_grid_nodes", IN, LATENT)
mlp(g2m + "encoder_nodes_mesh_nodes", IN, LATENT)
mlp(g2m + "processor_edges_0_grid2mesh", 3 * LATENT, LATENT)
mlp(g2m + "processor_nodes_0_grid_nodes", LATENT, LATENT)
mlp(g2m + "processor_nodes_0_mesh_nodes", 2 * LATENT, LATENT)
mlp(mesh + "encoder_edges_mesh", 4, LATENT)
for s in range(STEPS):
    mlp(mesh + f"processor_edges_{s}_mesh", 3 * LATENT, LATENT)
    mlp(mesh + f"processor_nodes_{s}_mesh_nodes", 2 * LATENT, LATENT)
mlp(m2g + "encoder_edges_mesh2grid", 4, LATENT)
mlp(m2g + "processor_edges_0_mesh2grid", 3 * LATENT, LATENT)
mlp(m2g + "processor_nodes_0_grid_nodes", 2 * LATENT, LATENT)
mlp(m2g + "processor_nodes_0_mesh_nodes", LATENT, LATENT)
mlp(m2g + "decoder_nodes_grid_nodes", LATENT, OUT, layer_norm=False)

targets = ("2m_temperature", "temperature")
forcings = ("toa_incident_solar_radiation", "year_progress_sin")
tree = {
    "params": params,
    "model_config": {"resolution": 30.0, "mesh_size": 1, "latent_size": LATENT, "gnn_msg_steps": STEPS,
                     "hidden_layers": 1, "radius_query_fraction_edge_length": 0.6,
                     "mesh2grid_edge_normalization_factor": 0.6180338738074472},
    "task_config": {"input_variables": targets + forcings + ("land_sea_mask",), "target_variables": targets,
                    "forcing_variables": forcings, "pressure_levels": (500, 850), "input_duration": "12h"},
    "description": "a tiny GraphCast for gc's tests",
    "license": "CC BY-SA 4.0 (test data)",
}


def flatten(node, prefix=""):
    out = {}
    items = enumerate(node) if isinstance(node, (tuple, list)) else node.items()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, tuple, list)):
            out.update(flatten(value, name + ":"))
        else:
            out[name] = value
    return out


flat = flatten(tree)
np.savez("tiny.npz", **flat)
no_factor = dict(flat)
del no_factor["model_config:mesh2grid_edge_normalization_factor"]
np.savez("tiny_no_m2g_factor.npz", **no_factor)
print(len([k for k in flat if k.startswith("params:")]), "parameter arrays,",
      sum(v.size for k, v in flat.items() if k.startswith("params:")), "values")
np.savez_compressed("tiny_compressed.npz", **flat)
