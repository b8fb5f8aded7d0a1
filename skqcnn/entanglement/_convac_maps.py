"""Eval-mode maps of an overlapping ConvAC on one-hot configurations, updated by light cones.

Works only on the plain tensors of
:meth:`skqcnn.nn.OverlappingConvACNetwork.folded_maps`: per layer the folded
per-offset rows (the factor normalisation included), the padding, the pooling,
``top_norm`` as a scale and shift, the log-scale and the readout with
``readout_norm`` folded in. The arithmetic is that of the network's eval-mode
``log_forward`` (``docs/theory.rst``, section "Network states") up to
rounding: every factor is divided by its largest entry (and every position
of the last map by its largest channel), and the logarithms of these scalars
are carried beside the maps, so that window products of large images do not
overflow, nor underflow unless a channel is far below the others.
"""

import math

import torch
from torch.nn import functional

from .._convac_eval import eval_layer, eval_network

# Entries of the largest intermediate tensor of one evaluation chunk: chains of
# many classes on a large image would otherwise need gigabytes at once.
_CHUNK_ENTRIES = 2**23


class ConvACMaps:
    """Amplitudes of an overlapping ConvAC from its folded eval-mode maps.

    Parameters
    ----------
    folded : dict
        As returned by :meth:`skqcnn.nn.OverlappingConvACNetwork.folded_maps`.
    device : torch.device or None, default=None

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._convac_maps import ConvACMaps
    >>> from skqcnn.nn._convac import OverlappingConvACNetwork
    >>> net = OverlappingConvACNetwork((4, 4), 2, (2, 2), 3, 1).double().eval()
    >>> configs = torch.randint(2, (3, 16))
    >>> log_abs, sign = ConvACMaps(net.folded_maps())(configs)
    >>> one_hot = torch.nn.functional.one_hot(configs, 2).double()
    >>> torch.allclose(log_abs, net.log_forward(one_hot)[0])
    True
    """

    def __init__(self, folded, device=None):
        self.image_shape = tuple(int(n) for n in folded["image_shape"])
        self.kernel_size = int(folded["kernel_size"])
        self.pooling = None if folded["pooling"] is None else int(folded["pooling"])
        self.left, self.right = (int(p) for p in folded["padding"])
        self.rows = [rows.to(device) for rows in folded["rows"]]
        self.top_scale, self.top_shift = (t.to(device) for t in folded["top"])
        self.log_shift = folded["log_shift"].to(device)
        self.readout = folded["readout"].to(device).T.contiguous()
        self.local_dim = self.rows[0].shape[2]
        self.dtype = self.readout.dtype
        self._borders = {}

    def __call__(self, configs):
        """``(log_abs, sign)`` of the scores, ``(batch, n_classes)``, from scratch."""
        _, top = self.run(configs)
        return self.readout_log(log_stats(*top))

    def run(self, configs):
        """Padded input map and log-scale map of every layer, and the last map.

        Returns
        -------
        inputs : list of (torch.Tensor, torch.Tensor)
            Per layer the padded map ``(batch, C, *padded)`` and log-scale map
            ``(batch, 1, *padded)``.
        top : (torch.Tensor, torch.Tensor)
            The last map after ``top_norm`` and its log-scale map.
        """
        per_row = max(r.shape[0] * r.shape[1] for r in self.rows) * math.prod(
            self.image_shape)
        chunk = max(1, _CHUNK_ENTRIES // per_row)
        parts = [self._run(configs[start:start + chunk])
                 for start in range(0, configs.shape[0], chunk)]
        if len(parts) == 1:
            return parts[0]
        inputs = [tuple(torch.cat([p[0][layer][i] for p in parts]) for i in range(2))
                  for layer in range(len(self.rows))]
        return inputs, tuple(torch.cat([p[1][i] for p in parts]) for i in range(2))

    def _run(self, configs):
        return eval_network(self.one_hot(configs.view((-1,) + self.image_shape)), self.rows,
                            self.kernel_size, self.pooling, (self.top_scale, self.top_shift),
                            self._borders)

    def one_hot(self, configs):
        """Integer configurations ``(batch, *positions)`` as maps ``(batch, M, *positions)``."""
        return functional.one_hot(configs, self.local_dim).to(self.dtype).movedim(-1, 1)

    def layer(self, padded, padded_log, index):
        """Layer ``index`` over a padded map (any window of one) and its log-scale map
        (:func:`skqcnn._convac_eval.eval_layer`, with ``top_norm`` after the last)."""
        top = (self.top_scale, self.top_shift) if index == len(self.rows) - 1 else None
        return eval_layer(padded, padded_log, self.rows[index], self.kernel_size,
                          self.pooling, top)

    def readout_log(self, stats):
        """``(log_abs, sign)`` of the scores from the per-channel statistics of
        the last map (:func:`log_stats`)."""
        log_sum, zeros, sign = stats
        empty = zeros > 0
        log_abs = torch.where(empty, -torch.inf, log_sum - self.log_shift)
        sign = torch.where(empty, 0.0, sign)
        top = log_abs.amax(dim=1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        scores = (sign * torch.exp(log_abs - top)) @ self.readout
        return torch.log(scores.abs()) + top, torch.sign(scores)


class ConvACUpdater:
    """Cached layer maps of many configurations, updated by light cones.

    All rows change the same site in a proposal, so the light cone of the
    change is the same box in every row and every update is a slice. The
    global product is kept as per-channel sums of log-magnitudes over the
    non-zero entries of the last map (log-scales included), zero counts and
    signs, so positions can be swapped in and out exactly.

    Parameters
    ----------
    maps : ConvACMaps
    configs : torch.Tensor of int64, shape (batch, n_sites)

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._convac_maps import ConvACMaps, ConvACUpdater
    >>> from skqcnn.nn._convac import OverlappingConvACNetwork
    >>> maps = ConvACMaps(OverlappingConvACNetwork((4, 4), 2, (2, 2), 3, 1).folded_maps())
    >>> configs = torch.randint(2, (3, 16))
    >>> updater = ConvACUpdater(maps, configs)
    >>> new_log, new_sign = updater.propose(5, torch.tensor([0, 1, 1]))
    >>> configs[:, 5] = torch.tensor([0, 1, 1])
    >>> torch.allclose(new_log, maps(configs)[0])
    True
    """

    def __init__(self, maps, configs):
        self.maps = maps
        self.configs = configs.clone()
        self.inputs, self.top = maps.run(configs)
        self.stats = log_stats(*self.top)
        self.pending = None

    def log_amplitudes(self):
        return self.maps.readout_log(self.stats)

    def propose(self, site, values):
        """Amplitudes with ``site`` of every row set to ``values`` ``(batch,)``."""
        lo = [int(i) for i in torch.unravel_index(torch.tensor(site), self.maps.image_shape)]
        patch = self.maps.one_hot(values.view((-1,) + (1,) * len(lo)))
        changes, stats = self._cone(None, lo, lo, patch)
        configs = self.configs.clone()
        configs[:, site] = values
        self.pending = ("cone", configs, changes, stats)
        return self.maps.readout_log(stats)

    def propose_configs(self, configs):
        """Amplitudes of whole new configurations of every row (a jump)."""
        inputs, top = self.maps.run(configs)
        stats = log_stats(*top)
        self.pending = ("all", configs, (inputs, top), stats)
        return self.maps.readout_log(stats)

    def accept(self, mask):
        """Keep the pending proposal in the rows where ``mask`` is True."""
        kind, configs, changes, stats = self.pending
        self.configs = torch.where(mask.unsqueeze(1), configs, self.configs)
        if kind == "cone":
            for target, region, patch in changes:
                keep = mask.view((-1,) + (1,) * (patch.dim() - 1))
                target[region] = torch.where(keep, patch, target[region])
        else:
            inputs, top = changes
            for old, new in zip(self.inputs + [self.top], inputs + [top]):
                for target, value in zip(old, new):
                    keep = mask.view((-1,) + (1,) * (value.dim() - 1))
                    target.copy_(torch.where(keep, value, target))
        self.stats = tuple(torch.where(mask.unsqueeze(1), new, old)
                           for new, old in zip(stats, self.stats))
        self.pending = None

    def swapped(self, first, second, in_a):
        """Amplitudes of the swapped pairs ``(s_A s'_B, s'_A s_B)``, by light cones.

        ``s`` is the configuration of the rows ``first`` and ``s'`` that of
        ``second``. Each swapped configuration is one of the pair with the
        bounding box of ``A`` (or of ``B``, whichever is smaller) taken from
        the other, so only that box's light cone is evaluated; when both
        boxes exceed half the image, the swapped configurations are evaluated
        in full.

        Parameters
        ----------
        first, second : torch.Tensor of int64, shape (n,)
        in_a : torch.Tensor of bool, shape (n_sites,)

        Returns
        -------
        log_abs, sign : torch.Tensor of shape (2, n, n_classes)
            ``[0]`` for ``s_A s'_B``, ``[1]`` for ``s'_A s_B``.
        """
        shape = self.maps.image_shape
        mask = in_a.view(shape)
        box_a, box_b = _bounding_box(mask), _bounding_box(~mask)
        if box_a is None or box_b is None:
            # One side is empty: every swapped configuration is one of the pair.
            rows = (second, first) if box_a is None else (first, second)
            pairs = [self.maps.readout_log(tuple(s[r] for s in self.stats)) for r in rows]
        elif min(_volume(box_a), _volume(box_b)) > math.prod(shape) / 2:
            a, b = self.configs[first], self.configs[second]
            pairs = [self.maps(torch.where(in_a, a, b)), self.maps(torch.where(in_a, b, a))]
        elif _volume(box_a) <= _volume(box_b):
            pairs = [self._patch(second, first, mask, box_a),
                     self._patch(first, second, mask, box_a)]
        else:
            pairs = [self._patch(first, second, ~mask, box_b),
                     self._patch(second, first, ~mask, box_b)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def _patch(self, rows, donors, mask, box):
        """Amplitudes of ``rows`` with the sites of ``mask`` taken from ``donors``,
        all inside the box ``(lo, hi)``."""
        lo, hi = box
        region = (slice(None),) + tuple(slice(a, b + 1) for a, b in zip(lo, hi))
        shape = (-1,) + self.maps.image_shape
        own = self.configs[rows].view(shape)[region]
        new = self.configs[donors].view(shape)[region]
        return self.patched(rows, lo, hi, torch.where(mask[region[1:]], new, own))

    def patched(self, rows, lo, hi, values):
        """Amplitudes of ``rows`` with the box ``lo..hi`` set to ``values``.

        Parameters
        ----------
        rows : torch.Tensor of int64, shape (n,)
        lo, hi : list of int
            Inclusive corners of the box on the image.
        values : torch.Tensor of int64, shape (n, *box)

        Returns
        -------
        log_abs, sign : torch.Tensor of shape (n, n_classes)
        """
        _, stats = self._cone(rows, list(lo), list(hi), self.maps.one_hot(values))
        return self.maps.readout_log(stats)

    def _cone(self, rows, lo, hi, patch):
        """Recompute the light cone of the box ``lo..hi`` set to the one-hot ``patch``.

        Returns the changed slices of the cached maps (for :meth:`accept`) and
        the new statistics of the last map, of all rows or of ``rows``.
        """
        maps = self.maps
        k, step = maps.kernel_size, maps.pooling or 1
        values = (patch, patch.new_zeros((patch.shape[0], 1) + patch.shape[2:]))
        changes = []
        for layer, padded in enumerate(self.inputs):
            sizes = [n - k + 1 for n in padded[0].shape[2:]]
            out_lo = [max(a - maps.right, 0) // step for a in lo]
            out_hi = [min(b + maps.left, n - 1) // step for b, n in zip(hi, sizes)]
            conv_lo = [a * step for a in out_lo]
            conv_hi = [min(b * step + step - 1, n - 1) for b, n in zip(out_hi, sizes)]
            # Padded coordinates: real position r sits at r + left.
            changed = _box([a + maps.left for a in lo], [b + maps.left for b in hi])
            inner = [a + maps.left - c for a, c in zip(lo, conv_lo)]
            inner = _box(inner, [a + b - c for a, b, c in zip(inner, hi, lo)])
            slab = _box(conv_lo, [b + k - 1 for b in conv_hi])
            windows = []
            for target, value in zip(padded, values):
                changes.append((target, changed, value))
                window = target[slab] if rows is None else target[(rows,) + slab[1:]]
                window = window.clone() if rows is None else window
                window[inner] = value
                windows.append(window)
            values = maps.layer(*windows, layer)
            lo, hi = out_lo, out_hi
        region = _box(lo, hi)
        top = self.top if rows is None else tuple(t[rows] for t in self.top)
        current = self.stats if rows is None else tuple(s[rows] for s in self.stats)
        old = log_stats(*(t[region] for t in top))
        new = log_stats(*values)
        log_sum, zeros, sign = current
        stats = (log_sum - old[0] + new[0], zeros - old[1] + new[1], sign * old[2] * new[2])
        changes.extend((t, region, v) for t, v in zip(self.top, values))
        return changes, stats


def log_stats(h, log_scale):
    """Per channel over all positions: the sum of ``log |h|`` over the non-zero
    entries plus the log-scales, the number of zeros, and the sign."""
    h = h.flatten(2)
    nonzero = h != 0
    log_sum = torch.where(nonzero, torch.log(h.abs()), 0.0).sum(dim=-1)
    log_sum = log_sum + log_scale.flatten(1).sum(dim=1, keepdim=True)
    sign = torch.where(nonzero, torch.sign(h), 1.0).prod(dim=-1)
    return log_sum, (~nonzero).sum(dim=-1), sign


def _bounding_box(mask):
    """Inclusive corners ``(lo, hi)`` of the True entries of ``mask``; None if none."""
    where = mask.nonzero()
    if where.numel() == 0:
        return None
    return where.amin(dim=0).tolist(), where.amax(dim=0).tolist()


def _volume(box):
    return math.prod(b - a + 1 for a, b in zip(*box))


def _box(lo, hi):
    """Index of the inclusive box ``lo..hi`` over the spatial axes."""
    return (slice(None), slice(None)) + tuple(slice(a, b + 1) for a, b in zip(lo, hi))
