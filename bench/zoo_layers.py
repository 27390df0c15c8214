"""The per-layer profile of a zoo net (python bench/zoo_layers.py, with bench/zoo.py's arguments): each layer's forward and backward
in hdl beside the same PyTorch module at the same input shape, in one process, taking turns; a layer and the
activation it fuses (a Conv2d or FullyConnected and the ReLU, leaky ReLU, sigmoid or tanh after it, a max pool and
its ReLU) are one row, as the Model runs them."""
import numpy as np

from hdl import ops
from hdl.convnet import AvgPool2d, Conv2d, FullyConnected, MaxPool2d, ReLU
from hdl.layers.pointwise import fused_activation
from zoo import DECAY, LR, MOMENTUM, HdlNetworkTwin, Net, TorchNetworkTwin, time_alternating, twins


def _sigma(layer, nxt):
    """What Model._forward fuses into layer from the layer after it: (name, slope), "relu" or None."""
    return fused_activation(layer, nxt) or ("relu" if layer.fuses_relu and type(nxt) is ReLU else None)


def _blocks(layers):
    """[(first, last, sigma)] layer index ranges as the Model runs them: a layer and the activation it fuses."""
    out, i = [], 0
    while i < len(layers):
        sigma = _sigma(layers[i], layers[i + 1] if i + 1 < len(layers) else None)
        fused = sigma is not None
        out.append((i, i + 1 if fused else i, sigma))
        i += 2 if fused else 1
    return out


def _describe(layer, x_shape, y_shape):
    name = type(layer).__name__
    if isinstance(layer, Conv2d) and not isinstance(layer, FullyConnected):
        name = f"conv{layer.kernel_size[0]}x{layer.kernel_size[1]}/s{layer.stride[0]}"
    elif isinstance(layer, FullyConnected):
        name = "fc"
    elif isinstance(layer, (MaxPool2d, AvgPool2d)):
        name = f"{layer.kind}{layer.window[0]}/s{layer.stride[0]}"
    return f"{name} {'x'.join(map(str, x_shape[1:]))}->{'x'.join(map(str, y_shape[1:]))}"


def _conv_macs(layer, x_shape, y_shape):
    if isinstance(layer, Conv2d):
        return int(np.prod(y_shape)) * x_shape[3] * layer.kernel_size[0] * layer.kernel_size[1]
    return 0


def profile_convnet(net: Net, batch, torch, repeats=7):
    """Rows (block, hdl fwd, torch fwd, hdl bwd, torch bwd, fwd GFLOP/s hdl) per fused block of layers,
    each at its own input shape, plus the loss+update and what the whole step leaves over."""
    h, t = twins(net, batch, torch)
    layers, mods = h.model.layers, t.mods
    acts = h.model._forward(h.x, train=True)
    rows = []
    for first, last, sigma in _blocks(layers):
        x, y = acts[first], acts[last + 1]
        layer = layers[first]
        fused = last > first
        dy = np.random.default_rng(0).standard_normal(y.shape).astype(y.dtype)
        need_dx = first > 0
        scratch = np.empty_like(dy)

        def hf():
            if sigma == "relu":
                layer.forward(x, True, relu=True)
            elif fused:
                layer.forward(x, True, activation=sigma)
            else:
                layer.forward(x, True)

        def hb():
            g = dy  # a ReLU's backward pass overwrites dy with dy * (y > 0): the same values every time
            if sigma == "relu" and isinstance(layer, Conv2d):
                g = layers[last].backward(g, y, y)
            elif fused:  # the others would scale dy again each call: the same kernel, into a buffer of its own
                name, slope = sigma
                g = (ops.relu_backward(dy, y, slope, out=scratch) if name in ("relu", "leaky_relu") else
                     getattr(ops, f"{name}_backward")(dy, y, out=scratch))
            layer.backward(g, x, y, need_dx=need_dx)

        hf()  # the argmax of a max pool for its backward pass
        block = torch.nn.Sequential(*mods[first:last + 1])
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).contiguous(
            memory_format=torch.channels_last)
        dyt = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2))).contiguous(
            memory_format=torch.channels_last)
        if isinstance(layer, FullyConnected) or (isinstance(mods[first], torch.nn.Sequential)):
            dyt = dyt.flatten(1)
        xg = xt.clone().requires_grad_(need_dx)
        yt = block(xg)
        wrt = ([xg] if need_dx else []) + list(block.parameters())

        def tf():
            with torch.no_grad():
                block(xt)

        def tb():
            if wrt:
                torch.autograd.grad(yt, wrt, dyt, retain_graph=True)

        hft, tft = time_alternating([hf, tf], repeats)
        hbt, tbt = time_alternating([hb, tb], repeats) if wrt else (0.0, 0.0)
        if not wrt:  # a first layer without parameters: no backward pass at all
            hbt = tbt = 0.0
        macs = _conv_macs(layer, x.shape, y.shape)
        name = _describe(layer, x.shape, y.shape) + ("" if not fused else "+" + (sigma if sigma == "relu" else sigma[0]))
        rows.append((name, hft, tft, hbt, tbt, 2 * macs, (4 if need_dx else 2) * macs))
    # the loss and the update, and the step as a whole
    scores = acts[-1].reshape(batch, -1)

    def h_rest():
        ops.softmax_log_loss(scores, h.labels)
        h.model.step(LR, MOMENTUM, DECAY)

    t.step()  # gradients exist

    def t_rest():
        torch.nn.functional.cross_entropy(torch.from_numpy(scores.copy()), t.labels)
        t.opt.step()

    hr, tr = time_alternating([h_rest, t_rest], repeats)
    hs, ts = time_alternating([h.step, t.step], repeats)
    return rows, (hr, tr), (hs, ts)


def profile_network(net: Net, batch, torch, repeats=7):
    """The same for a paper-style dense net: each Dense layer's forward and backward (hdl.ops) beside
    Linear (+ReLU) in PyTorch, on (n, batch) columns."""
    h = HdlNetworkTwin(net, batch)
    t = TorchNetworkTwin(torch, net, batch)
    a = h.model.forward(h.x, return_all=True)
    rows = []
    for i, layer in enumerate(h.model.layers):
        x, y = a[i], a[i + 1]
        g = np.random.default_rng(0).standard_normal(y.shape).astype(y.dtype)
        block = torch.nn.Sequential(*t.mods[2 * i:2 * i + 2])
        xt = torch.from_numpy(np.ascontiguousarray(x.T))
        xg = xt.clone().requires_grad_(i > 0)
        yt = block(xg)
        wrt = ([xg] if i > 0 else []) + list(block.parameters())
        gt = torch.from_numpy(np.ascontiguousarray(g.T))

        def tf():
            with torch.no_grad():
                block(xt)

        hft, tft = time_alternating([lambda: layer.forward_columns(x), tf], repeats)
        hbt, tbt = time_alternating([lambda: layer.backward_columns(g, x, y, want_g_in=i > 0),
                                     lambda: torch.autograd.grad(yt, wrt, gt, retain_graph=True)], repeats)
        macs = layer.n_in * layer.n_out * batch
        rows.append((f"dense {layer.n_in}->{layer.n_out} {layer.activation}", hft, tft, hbt, tbt, 2 * macs,
                     (4 if i > 0 else 2) * macs))
    hs, ts = time_alternating([h.step, t.step], repeats)
    k = HdlNetworkTwin.steps
    return rows, None, (hs / k, ts / k)


def profile_table(net, batch, torch, peak):
    rows, rest, (hs, ts) = (profile_network if net.sizes else profile_convnet)(net, batch, torch)
    pk = peak / 2 if net.dtype == np.float64 else peak
    lines = [f"\n### {net.name}, batch {batch}: per layer (median ms; torch/hdl > 1: hdl faster)\n",
             "| layer (in->out, HWC) | hdl fwd | torch fwd | torch/hdl | hdl bwd | torch bwd | torch/hdl | "
             "hdl fwd GF/s | hdl bwd GF/s | hdl fwd % peak | hdl bwd % peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    sum_h = sum_t = 0.0
    for name, hf, tf, hb, tb, flop_f, flop_b in rows:  # flop_b: dx and dw (the first layer: dw only)
        sum_h += hf + hb
        sum_t += tf + tb
        macs = flop_f
        gf = flop_f / hf / 1e9 if flop_f else 0.0
        gb = flop_b / hb / 1e9 if flop_b and hb else 0.0
        lines.append(f"| {name} | {hf * 1e3:.3f} | {tf * 1e3:.3f} | {tf / hf:.2f} | {hb * 1e3:.3f} | "
                     f"{tb * 1e3:.3f} | {tb / hb if hb else float('nan'):.2f} | "
                     f"{gf:.1f} | {gb:.1f} | {100 * gf / pk:.0f}% | {100 * gb / pk:.0f}% |" if macs else
                     f"| {name} | {hf * 1e3:.3f} | {tf * 1e3:.3f} | {tf / hf:.2f} | {hb * 1e3:.3f} | "
                     f"{tb * 1e3:.3f} | {tb / hb if hb else float('nan'):.2f} | | | | |")
    if rest is not None:
        lines.append(f"| loss + SGD update | {rest[0] * 1e3:.3f} | {rest[1] * 1e3:.3f} | {rest[1] / rest[0]:.2f} |"
                     " | | | | | | |")
        sum_h += rest[0]
        sum_t += rest[1]
    blank = " |" * 7
    lines.append(f"| **sum of the above** | {sum_h * 1e3:.2f} | {sum_t * 1e3:.2f} | {sum_t / sum_h:.2f} |{blank}")
    lines.append(f"| **whole step** | {hs * 1e3:.2f} | {ts * 1e3:.2f} | {ts / hs:.2f} |{blank}")
    lines.append(f"\nstep minus the sum of its parts (Python, glue, caches): hdl {(hs - sum_h) * 1e3:.2f} ms, "
                 f"torch {(ts - sum_t) * 1e3:.2f} ms")
    return "\n".join(lines)


def conv_split_table(net: Net, batch, torch, repeats=7):
    """Each convolution's backward pass in its two halves: dw (and db) alone, and dx (timed with dw, less
    dw; PyTorch's dx alone), hdl (ops.conv2d_backward) beside PyTorch."""
    if net.sizes:
        return ""
    h, t = twins(net, batch, torch)
    acts = h.model._forward(h.x, train=False)
    lines = [f"\n{net.name}, batch {batch}: convolution backward split (median ms)\n",
             "| layer | hdl dw | torch dw | torch/hdl | hdl dx | torch dx | torch/hdl |",
             "|---|---|---|---|---|---|---|"]
    for i, layer in enumerate(h.model.layers):
        if not isinstance(layer, Conv2d):
            continue
        x, y = acts[i], acts[i + 1]
        dy = np.random.default_rng(0).standard_normal(y.shape).astype(y.dtype)
        dx = np.empty_like(x)
        w, s, p = layer.w, layer.stride, layer.pad
        mod = t.mods[i][-1] if isinstance(t.mods[i], torch.nn.Sequential) else t.mods[i]
        block = t.mods[i]
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).contiguous(
            memory_format=torch.channels_last).requires_grad_(i > 0)
        yt = block(xt)
        dyt = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2))).contiguous(
            memory_format=torch.channels_last).reshape(yt.shape)
        fns = [lambda: ops.conv2d_backward(dy, x, w, s, p, want_dx=False, layout="NHWC"),
               lambda: torch.autograd.grad(yt, [mod.weight, mod.bias], dyt, retain_graph=True),
               lambda: ops.conv2d_backward(dy, x, w, s, p, want_dx=True, layout="NHWC", dx_out=dx),
               lambda: torch.autograd.grad(yt, [xt], dyt, retain_graph=True)]
        hw, tw, hall, tx = time_alternating(fns if i > 0 else fns[:2], repeats) + ([] if i > 0 else [0.0, 0.0])
        hx = hall - hw
        dx_cells = f"{hx * 1e3:.3f} | {tx * 1e3:.3f} | {tx / hx if hx > 0 else float('nan'):.2f}" if i else "- | - | -"
        lines.append(f"| {_describe(layer, x.shape, y.shape)} | {hw * 1e3:.3f} | {tw * 1e3:.3f} | {tw / hw:.2f} | "
                     f"{dx_cells} |")  # the first layer needs no dx
    return "\n".join(lines)


def main(argv=None):
    """bench/zoo.py's table, then every net's per-layer profile and convolution backward split."""
    import zoo

    args, torch, peak = zoo.main(argv)
    for batch in args.batch:
        for name in args.nets:
            print(profile_table(zoo.NETS[name], batch, torch, peak), flush=True)
            print(conv_split_table(zoo.NETS[name], batch, torch), flush=True)


if __name__ == "__main__":
    main()
