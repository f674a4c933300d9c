#!/usr/bin/env python3
"""torch_port.py: an eager PyTorch port of gc's GraphCast training step, written the
way people port GraphCast (index_select to gather node rows to the edges,
index_add_ to sum messages into the receivers, torch.cat for the MLPs' inputs,
AdamW, gradient clipping), to time gc's cpu step against on the same machine in
the same run (tools/cpu_vs_torch.sh; docs/PERFORMANCE.md, "The cpu against a
PyTorch port").

The network is gc's (GRAPHCAST.md section 4): encoder (grid and mesh embeddings,
grid2mesh interaction, grid node update), `--layers` processor interaction steps
on the multimesh, decoder (mesh2grid interaction, output MLP without LayerNorm);
MLPs are Linear -> SiLU -> Linear -> LayerNorm; f32. The graphs have gc's node and
edge counts for the configuration (read from `gc_train --device meta --report`),
edges sorted by receiver with random senders: the work per op is the same, the
memory locality of the gathers is not (stated, not hidden).

Run by hand (never by CI), with Debian's python3-torch:
  /usr/bin/python3 tools/reference/torch_port.py --grid 5.625 --mesh 3 --latent 64 --layers 4 --threads 1
prints one JSON line: the configuration, the graph sizes and the median step in ms.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def graph_sizes(gc_train, grid, mesh, latent, layers, channels_in, channels_out):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        subprocess.run([gc_train, "--preset", "graphcast-small", "--grid", str(grid), "--mesh", str(mesh),
                        "--latent", str(latent), "--layers", str(layers), "--in-channels", str(channels_in),
                        "--out-channels", str(channels_out), "--rollout", "1", "--steps", "1", "--device", "meta",
                        "--quiet", "--no-eval", "--report", report], check=True)
        with open(report) as f:
            return json.load(f)["graph"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gc-train", default="./gc_train")
    p.add_argument("--grid", type=float, required=True)
    p.add_argument("--mesh", type=int, required=True)
    p.add_argument("--latent", type=int, required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--in-channels", type=int, default=9, help="grid inputs with the 3 structural features (gc's flag)")
    p.add_argument("--out-channels", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="timed steps (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    import torch  # Debian's python3-torch; imported late so that --help needs no torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g = graph_sizes(a.gc_train, a.grid, a.mesh, a.latent, a.layers, a.in_channels, a.out_channels)
    G, M, L = g["grid_nodes"], g["mesh_nodes"], a.latent

    def graph(edges, senders, receivers):
        s = torch.randint(0, senders, (edges,))
        r = torch.sort(torch.randint(0, receivers, (edges,))).values
        return s, r, torch.randn(edges, 4)

    g2m = graph(g["g2m_edges"], G, M)
    mesh = graph(g["mesh_edges"], M, M)
    m2g = graph(g["m2g_edges"], M, G)

    def mlp(i, o, layernorm=True):
        layers = [torch.nn.Linear(i, L), torch.nn.SiLU(), torch.nn.Linear(L, o)]
        if layernorm:
            layers.append(torch.nn.LayerNorm(o))
        return torch.nn.Sequential(*layers)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            inp = a.in_channels
            self.grid_embed, self.mesh_embed = mlp(inp, L), mlp(inp, L)
            self.g2m_edge_embed, self.g2m_edge = mlp(4, L), mlp(3 * L, L)
            self.g2m_mesh_node, self.g2m_grid_node = mlp(2 * L, L), mlp(L, L)
            self.mesh_edge_embed = mlp(4, L)
            self.edge = torch.nn.ModuleList([mlp(3 * L, L) for _ in range(a.layers)])
            self.node = torch.nn.ModuleList([mlp(2 * L, L) for _ in range(a.layers)])
            self.m2g_edge_embed, self.m2g_edge = mlp(4, L), mlp(3 * L, L)
            self.m2g_grid_node = mlp(2 * L, L)
            self.output = mlp(L, a.out_channels, layernorm=False)

        @staticmethod
        def interaction(edge_mlp, e, senders, receivers, graph_, n_receivers):
            s, r, _ = graph_
            m = edge_mlp(torch.cat([e, senders.index_select(0, s), receivers.index_select(0, r)], dim=1))
            agg = torch.zeros(n_receivers, m.shape[1]).index_add_(0, r, m)
            return m, agg

        def forward(self, grid_in, mesh_in):
            vg, vm = self.grid_embed(grid_in), self.mesh_embed(mesh_in)
            _, agg = self.interaction(self.g2m_edge, self.g2m_edge_embed(g2m[2]), vg, vm, g2m, M)
            vm = vm + self.g2m_mesh_node(torch.cat([vm, agg], dim=1))
            vg = vg + self.g2m_grid_node(vg)
            e = self.mesh_edge_embed(mesh[2])
            for edge_mlp, node_mlp in zip(self.edge, self.node):
                m, agg = self.interaction(edge_mlp, e, vm, vm, mesh, M)
                vm = vm + node_mlp(torch.cat([vm, agg], dim=1))
                e = e + m
            _, agg = self.interaction(self.m2g_edge, self.m2g_edge_embed(m2g[2]), vm, vg, m2g, G)
            vg = vg + self.m2g_grid_node(torch.cat([vg, agg], dim=1))
            return self.output(vg)

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    grid_in = torch.randn(G, a.in_channels)
    mesh_in = torch.zeros(M, a.in_channels)
    target = torch.randn(G, a.out_channels)
    row_weight = torch.rand(G) + 0.5

    def step():
        opt.zero_grad(set_to_none=True)
        y = net(grid_in, mesh_in)
        loss = ((y - target) ** 2 * row_weight[:, None]).sum() / G
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 32.0)
        opt.step()
        return loss.item()

    for _ in range(2):
        step()
    times = []
    for _ in range(a.steps):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    times.sort()
    print(json.dumps({"grid": a.grid, "mesh": a.mesh, "latent": L, "layers": a.layers, "threads": a.threads,
                      "graph": g, "torch": torch.__version__, "ms_median": times[len(times) // 2],
                      "ms_best": times[0]}))


if __name__ == "__main__":
    sys.exit(main())
