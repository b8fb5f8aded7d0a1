"""Markov chains over basis configurations of a network state, batched over chains.

An *updater* holds the configurations of every chain (one per row) and their
log-amplitudes, and answers ``propose(site, values)`` (the log-amplitudes with
``site`` of every row set to ``values``), ``propose_configs(configs)`` (those
of whole new configurations) and ``accept(mask)``. All rows change the same
site in a proposal, so a network can re-evaluate only the part of its
computation that the site reaches (its light cone).
"""

import math

import torch


class FullUpdater:
    """Single-site proposals evaluated by a full call of the amplitude function.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(configs)`` gives ``(log_abs, sign)``, each ``(batch, n_classes)``.
    configs : torch.Tensor of int64, shape (batch, n_sites)
    """

    def __init__(self, evaluate, configs):
        self.evaluate = evaluate
        self.configs = configs
        self.current = evaluate(configs)
        self.pending = None

    def log_amplitudes(self):
        return self.current

    def propose(self, site, values):
        proposal = self.configs.clone()
        proposal[:, site] = values
        self.pending = (proposal, self.evaluate(proposal))
        return self.pending[1]

    def propose_configs(self, configs):
        """Amplitudes of whole new configurations of every row (a jump)."""
        self.pending = (configs, self.evaluate(configs))
        return self.pending[1]

    def accept(self, mask):
        proposal, (new_log, new_sign) = self.pending
        keep = mask.unsqueeze(1)
        self.configs = torch.where(keep, proposal, self.configs)
        self.current = (torch.where(keep, new_log, self.current[0]),
                        torch.where(keep, new_sign, self.current[1]))
        self.pending = None


def is_recurrent(network):
    """Whether ``network`` exposes the eval-mode maps of a deep RAC (duck typing)."""
    return hasattr(network, "folded_layers") and hasattr(network, "n_steps")


class RecurrentMaps:
    """Eval-mode maps of a deep recurrent arithmetic circuit, for light-cone updates.

    Step ``t`` of every layer depends on the inputs ``1..t`` only, so changing
    the input at step ``t`` leaves the states of steps ``< t`` (the prefix)
    untouched; :class:`RecurrentUpdater` recomputes steps ``t..T`` of each
    layer from the cached prefix. Works on the folded maps of
    ``folded_layers()``: ``h_t = N_t ((H h_{t-1}) * (I x_t))``. The cached
    quantity is the pre-normalisation product ``g_t`` (so ``N_t`` folds into
    the next step's matrices), stored divided by a positive factor whose
    logarithm is carried alongside, as in the network's own ``log_forward``.

    Parameters
    ----------
    network : object
        With ``folded_layers()`` returning ``(layers, readout)`` as
        :meth:`skqcnn.nn.DeepRACNetwork.folded_layers` does, and ``n_steps``.
    device : torch.device or None, default=None
    rescale_every : int, default=8
        Steps between rescalings; products of a few steps stay far from the
        float64 range, and fewer rescalings mean fewer tensor operations.
    """

    def __init__(self, network, device=None, rescale_every=8):
        layers, readout = network.folded_layers()
        self.n_steps = int(network.n_steps)
        self.rescale_every = int(rescale_every)
        self.step_maps, self.input_maps, self.starts = [], [], []
        below_norms = None
        for layer in layers:
            hidden = layer["hidden"].to(device)
            norms = layer["norms"].to(device)
            # A_t = H N_{t-1}, with N_0 the identity: the initial state is not normalised.
            previous = torch.cat((torch.eye(hidden.shape[0], dtype=hidden.dtype,
                                            device=hidden.device)[None], norms[:-1]))
            self.step_maps.append((hidden @ previous).transpose(1, 2).contiguous())
            inputs = layer["input"].to(device)
            if below_norms is None:
                self.input_maps.append(inputs.T.contiguous())
            else:
                # B_t = I N^{below}_t: the input of step t is the layer below's h_t.
                self.input_maps.append((inputs @ below_norms).transpose(1, 2).contiguous())
            self.starts.append(layer["initial"].to(device))
            below_norms = norms
        self.readout_map = (readout.to(device) @ below_norms[-1]).T.contiguous()

    def __call__(self, configs):
        """``(log_abs, sign)`` of the scores, ``(batch, n_classes)``, from scratch."""
        return self.readout(*self.run(configs, 0, None, None))

    def run(self, configs, start, states, log_scales):
        """States of steps ``start..T-1`` (0-based) of every layer from the cached prefix.

        Returns the new states ``(batch, T - start, D)`` and the cumulative
        log-scales ``(batch, T - start)`` of each layer.
        """
        batch = configs.shape[0]
        new_states, new_scales = [], []
        below, below_scale = None, None
        for index, (steps, inputs, initial) in enumerate(
            zip(self.step_maps, self.input_maps, self.starts)
        ):
            if below is None:
                projected = inputs[configs[:, start:]]
                incoming = torch.zeros(batch, self.n_steps - start, dtype=inputs.dtype,
                                       device=configs.device)
            else:
                projected = torch.einsum("btd,tde->bte", below, inputs[start:])
                # The input h_t of the layer below carries its whole cumulative scale.
                incoming = below_scale
            if start == 0:
                state = initial.expand(batch, -1)
                scale = torch.zeros(batch, dtype=inputs.dtype, device=configs.device)
            else:
                state = states[index][:, start - 1]
                scale = log_scales[index][:, start - 1]
            outputs, rescaled, log_tops = [], [], []
            for offset, t in enumerate(range(start, self.n_steps)):
                state = (state @ steps[t]) * projected[:, offset]
                if (t + 1) % self.rescale_every == 0 or t == self.n_steps - 1:
                    top = state.abs().amax(dim=1)
                    top = torch.where(top > 0, top, torch.ones_like(top))
                    state = state / top.unsqueeze(1)
                    rescaled.append(offset)
                    log_tops.append(torch.log(top))
                outputs.append(state)
            # Cumulative scales in one pass instead of one addition per step.
            increments = incoming.index_add(
                1, torch.tensor(rescaled, device=configs.device), torch.stack(log_tops, dim=1))
            below = torch.stack(outputs, dim=1)
            below_scale = scale.unsqueeze(1) + increments.cumsum(dim=1)
            new_states.append(below)
            new_scales.append(below_scale)
        return new_states, new_scales

    def readout(self, states, log_scales):
        """``(log_abs, sign)`` of the scores from the states of ``run``."""
        scores = states[-1][:, -1] @ self.readout_map
        return torch.log(scores.abs()) + log_scales[-1][:, -1:], torch.sign(scores)


class RecurrentUpdater:
    """Light-cone updater of a deep RAC over many configurations (see :class:`RecurrentMaps`).

    Parameters
    ----------
    maps : RecurrentMaps
    configs : torch.Tensor of int64, shape (batch, n_steps)
    """

    def __init__(self, maps, configs):
        self.maps = maps
        self.configs = configs.clone()
        self.states, self.log_scales = maps.run(configs, 0, None, None)
        self.current = maps.readout(self.states, self.log_scales)
        self.pending = None

    def log_amplitudes(self):
        return self.current

    def propose(self, site, values):
        configs = self.configs.clone()
        configs[:, site] = values
        states, log_scales = self.maps.run(configs, site, self.states, self.log_scales)
        amplitudes = self.maps.readout(states, log_scales)
        self.pending = (site, configs, states, log_scales, amplitudes)
        return amplitudes

    def propose_configs(self, configs):
        """Amplitudes of whole new configurations of every row (a jump)."""
        states, log_scales = self.maps.run(configs, 0, None, None)
        amplitudes = self.maps.readout(states, log_scales)
        self.pending = (0, configs, states, log_scales, amplitudes)
        return amplitudes

    def accept(self, mask):
        site, configs, states, log_scales, (new_log, new_sign) = self.pending
        keep = mask.view(-1, 1)
        self.configs = torch.where(keep, configs, self.configs)
        for old, new in zip(self.states, states):
            old[:, site:] = torch.where(keep.unsqueeze(2), new, old[:, site:])
        for old, new in zip(self.log_scales, log_scales):
            old[:, site:] = torch.where(keep, new, old[:, site:])
        self.current = (torch.where(keep, new_log, self.current[0]),
                        torch.where(keep, new_sign, self.current[1]))
        self.pending = None


def geometric_ladder(n_temperatures, beta_min, dtype=torch.float64, device=None):
    """Inverse temperatures ``1 = beta_0 > ... > beta_{K-1} = beta_min``, geometric.

    Examples
    --------
    >>> from skqcnn.entanglement._sampling import geometric_ladder
    >>> geometric_ladder(3, 0.25).tolist()
    [1.0, 0.5, 0.25]
    """
    if n_temperatures == 1:
        return torch.ones(1, dtype=dtype, device=device)
    exponents = torch.arange(n_temperatures, dtype=dtype, device=device) / (n_temperatures - 1)
    return beta_min**exponents


class TemperedChains:
    """Independent groups of chains, each a replica-exchange ladder over ``|Psi|^(2 beta)``.

    Row ``g * K + k`` is slot ``k`` of group ``g``; ``level[row]`` is the
    index of its current inverse temperature. Exchanges swap the levels of two
    rows (not their configurations), so the updater's cached light cones stay
    valid. The chain that a group contributes to measurements is the row at
    level 0 (``beta = 1``), which samples ``|Psi|^2``; the others cross
    between modes at flatter targets and hand configurations down the ladder.

    A *jump* proposes, in every walker at once, an independent configuration
    from ``q``: with probability 1/2 one of the ``M`` constant configurations
    (every site in the same state), otherwise a uniformly random one; it is
    accepted with the Metropolis-Hastings ratio
    ``|Psi(y)|^(2 beta) q(x) / (|Psi(x)|^(2 beta) q(y))``. Networks with a
    constant channel put isolated spikes of ``|Psi|^2`` on the constant
    configurations (the bias paths of every layer meet there), which no
    sequence of single-site moves through low-amplitude neighbours reaches.

    With ``jumps``, the walkers start from the jump proposal resampled by
    the target (sampling-importance-resampling): each picks its uniformly
    random configuration or one of the ``M`` constant ones with probability
    proportional to ``|Psi|^(2 beta) / q``. Chains then begin on spikes at
    the constant configurations where a network has them, instead of waiting
    for jumps to find them, and on a random configuration where the weight
    of ``|Psi|^2`` is spread out.

    Parameters
    ----------
    updater : object
        A light-cone updater over the rows of ``configs`` (see the module
        docstring).
    evaluate : callable
        ``evaluate(configs)`` gives ``(log_abs, sign)`` of shape ``(batch, n_classes)``.
    configs : torch.Tensor of int64, shape (n_groups * K, n_sites)
    column : torch.Tensor of int64, shape (n_groups * K,)
        Class (output column) each row samples.
    betas : torch.Tensor of float64, shape (K,)
    n_sites, local_dim : int
    generator : torch.Generator
    jumps : bool, default=True
        Whether :meth:`jump` will be called; then the walkers start as above.
    """

    def __init__(self, updater, evaluate, configs, column, betas, n_sites, local_dim,
                 generator, jumps=True):
        self.updater = updater
        self.evaluate = evaluate
        self.configs = configs.clone()
        self.betas = betas
        self.n_levels = betas.numel()
        self.n_groups = configs.shape[0] // self.n_levels
        self.n_sites, self.local_dim, self.gen = n_sites, local_dim, generator
        self.device = configs.device
        self.rows = torch.arange(configs.shape[0], device=self.device)
        self.column = column
        self.level = torch.arange(self.n_levels, device=self.device).repeat(self.n_groups)
        self.log_abs, self.sign = self._pick(updater.log_amplitudes())
        self.order = []
        self.parity = 0
        self.accepted = torch.zeros(configs.shape[0], dtype=torch.float64, device=self.device)
        self.exchanges = torch.zeros(max(self.n_levels - 1, 1), dtype=torch.float64,
                                     device=self.device)
        self.exchange_tries = torch.zeros_like(self.exchanges)
        self.n_proposals = 0
        self.jumps = torch.zeros_like(self.accepted)
        self.n_jumps = 0
        if jumps:
            self._start_on_constants()

    def _start_on_constants(self):
        """Move each walker to a constant configuration with probability
        proportional to ``|Psi|^(2 beta) / q`` among them and its own configuration."""
        m, n_sites = self.local_dim, self.n_sites
        constants = torch.arange(m, device=self.device).unsqueeze(1).expand(m, n_sites)
        log_abs, sign = self.evaluate(constants)
        candidates = torch.cat((self.log_abs.unsqueeze(1),
                                log_abs[:, self.column].T.double()), dim=1)
        # Importance weights |Psi|^(2 beta) / q of the candidates, a draw of q.
        log_q = torch.cat((self._log_q(self.configs).unsqueeze(1),
                           self._log_q(constants[:1]).expand(len(self.configs), m)), dim=1)
        logits = 2.0 * self.betas[self.level].unsqueeze(1) * candidates - log_q
        # Where every candidate vanishes, the walker keeps its own configuration.
        logits[torch.isneginf(logits).all(dim=1), 0] = 0.0
        choice = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=self.gen)[:, 0]
        moved = choice > 0
        if not moved.any():
            return
        proposal = torch.where(moved.unsqueeze(1),
                               (choice - 1).clamp(min=0).unsqueeze(1).expand(-1, n_sites),
                               self.configs)
        self.updater.propose_configs(proposal)
        self.updater.accept(moved)
        self.configs = proposal
        self.log_abs, self.sign = self._pick(self.updater.log_amplitudes())

    def _pick(self, out):
        return out[0][self.rows, self.column].double(), out[1][self.rows, self.column].double()

    def step(self):
        """One single-site Metropolis proposal in every row, then one round of exchanges."""
        if not self.order:
            self.order.extend(torch.randperm(self.n_sites, generator=self.gen,
                                             device=self.device).tolist())
        site = self.order.pop()
        n_rows = self.configs.shape[0]
        move = torch.randint(1, self.local_dim, (n_rows,), generator=self.gen,
                             device=self.device)
        values = (self.configs[:, site] + move) % self.local_dim
        new_log, new_sign = self._pick(self.updater.propose(site, values))
        threshold = torch.log(torch.rand(n_rows, generator=self.gen, device=self.device,
                                         dtype=torch.float64))
        beta = self.betas[self.level]
        # A chain started on a zero amplitude moves freely until it finds support.
        accept = (threshold < 2.0 * beta * (new_log - self.log_abs)) | torch.isneginf(
            self.log_abs)
        self.updater.accept(accept)
        self.configs[:, site] = torch.where(accept, values, self.configs[:, site])
        self.log_abs = torch.where(accept, new_log, self.log_abs)
        self.sign = torch.where(accept, new_sign, self.sign)
        self.accepted += accept
        self.n_proposals += 1
        if self.n_levels > 1:
            self._exchange()

    def _slots(self):
        """``slots[g, k]``: the row of group ``g`` at level ``k``."""
        order = torch.argsort(self.level.view(self.n_groups, self.n_levels), dim=1)
        return order + self.n_levels * torch.arange(self.n_groups, device=self.device)[:, None]

    def _exchange(self):
        """Swap adjacent levels, even pairs and odd pairs in turn (deterministic even-odd)."""
        lower = torch.arange(self.parity, self.n_levels - 1, 2, device=self.device)
        self.parity = 1 - self.parity
        if lower.numel() == 0:
            return
        slots = self._slots()
        hot, cold = slots[:, lower + 1], slots[:, lower]
        delta = (self.betas[lower] - self.betas[lower + 1]) * 2.0 * (
            self.log_abs[hot] - self.log_abs[cold])
        threshold = torch.log(torch.rand(delta.shape, generator=self.gen, device=self.device,
                                         dtype=torch.float64))
        swap = threshold < delta
        level = self.level.clone()
        level[cold] = torch.where(swap, self.level[hot], self.level[cold])
        level[hot] = torch.where(swap, self.level[cold], self.level[hot])
        self.level = level
        self.exchanges.index_add_(0, lower, swap.double().sum(0))
        self.exchange_tries.index_add_(0, lower, torch.full_like(lower, self.n_groups,
                                                                 dtype=torch.float64))

    def jump(self):
        """One independence proposal in every walker, towards constant or random configurations."""
        n_rows, n_sites, m = self.configs.shape[0], self.n_sites, self.local_dim
        constant = torch.rand(n_rows, generator=self.gen, device=self.device) < 0.5
        value = torch.randint(m, (n_rows, 1), generator=self.gen, device=self.device)
        uniform = torch.randint(m, (n_rows, n_sites), generator=self.gen, device=self.device)
        proposal = torch.where(constant.unsqueeze(1), value.expand(-1, n_sites), uniform)
        new_log, new_sign = self._pick(self.updater.propose_configs(proposal))
        threshold = torch.log(torch.rand(n_rows, generator=self.gen, device=self.device,
                                         dtype=torch.float64))
        beta = self.betas[self.level]
        ratio = (2.0 * beta * (new_log - self.log_abs) + self._log_q(self.configs)
                 - self._log_q(proposal))
        accept = (threshold < ratio) | (torch.isneginf(self.log_abs) & ~torch.isneginf(new_log))
        self.updater.accept(accept)
        keep = accept.unsqueeze(1)
        self.configs = torch.where(keep, proposal, self.configs)
        self.log_abs = torch.where(accept, new_log, self.log_abs)
        self.sign = torch.where(accept, new_sign, self.sign)
        self.jumps += accept.double()
        self.n_jumps += 1

    def _log_q(self, configs):
        """Log-probability of ``configs`` under the jump proposal."""
        n_sites, m = self.n_sites, self.local_dim
        constant = (configs == configs[:, :1]).all(dim=1)
        log_uniform = torch.full(constant.shape, math.log(0.5) - n_sites * math.log(m),
                                 dtype=torch.float64, device=self.device)
        log_constant = torch.full_like(log_uniform, math.log(0.5 / m))
        return torch.where(constant, torch.logaddexp(log_uniform, log_constant), log_uniform)

    def sampled(self):
        """Rows, configurations, log-amplitudes and signs of every group's ``beta = 1`` walker."""
        rows = self._slots()[:, 0]
        return rows, self.configs[rows], self.log_abs[rows], self.sign[rows]

    def acceptance(self):
        """Single-site acceptance rate of every row over the proposals so far."""
        return self.accepted / max(self.n_proposals, 1)

    def jump_acceptance(self):
        """Acceptance rate of jumps of every row."""
        return self.jumps / max(self.n_jumps, 1)

    def exchange_rates(self):
        """Acceptance of exchanges between levels ``k`` and ``k + 1``."""
        return (self.exchanges / self.exchange_tries.clamp(min=1)).cpu().numpy()


def swapped_amplitudes(evaluate, first, second, column, in_a, batch_size):
    """``(log_abs, sign)`` of the swapped pairs ``s_A s'_B`` and ``s'_A s_B``.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(configs)`` gives ``(log_abs, sign)`` of shape ``(batch, n_classes)``.
    first, second : torch.Tensor of int64, shape (n_pairs, n_sites)
        ``s`` and ``s'`` of every pair.
    column : torch.Tensor of int64, shape (n_pairs,)
        Class of each pair.
    in_a : torch.Tensor of bool, shape (n_sites,)
    batch_size : int
        Configurations per call of ``evaluate``.

    Returns
    -------
    log_abs, sign : torch.Tensor of float64, shape (2, n_pairs)
        Row 0 for ``s_A s'_B``, row 1 for ``s'_A s_B``, each of its pair's class.
    """
    swapped = torch.cat((torch.where(in_a, first, second), torch.where(in_a, second, first)))
    columns = torch.cat((column, column))
    logs, signs = [], []
    for start in range(0, swapped.shape[0], batch_size):
        log_abs, sign = evaluate(swapped[start:start + batch_size])
        rows = torch.arange(log_abs.shape[0], device=log_abs.device)
        pick = columns[start:start + batch_size]
        logs.append(log_abs[rows, pick].double())
        signs.append(sign[rows, pick].double())
    return torch.cat(logs).view(2, -1), torch.cat(signs).view(2, -1)
