"""BG/NBD and MBG/NBD model specifications (one family with a flag, :mod:`clvbayes.math.bgnbd`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from clvbayes.math import bgnbd, mbgnbd
from clvbayes.models.base import ModelSpec
from clvbayes.priors import BGNBD_HIERARCHICAL_PRIORS, BGNBD_PRIORS

__all__ = ["BGNBD", "MBGNBD"]


class BGNBD(ModelSpec):
    """Beta-Geometric/NBD model of repeat purchases and dropout (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    priors : mapping, optional
        Priors by pymc-marketing's names: ``r``, ``alpha`` and either ``phi_dropout`` and
        ``kappa_dropout`` (mean and concentration of the dropout Beta; the default) or
        ``a`` and ``b``. Values are pymc_extras ``Prior`` objects or their dict form.
        See :mod:`clvbayes.priors` for the defaults and their reasoning. With
        ``segments`` and ``pooling="partial"`` the priors are the hyperpriors ``r_mu,
        r_sigma, purchase_rate_mu, purchase_rate_sigma, phi_dropout_mu,
        phi_dropout_sigma, kappa_dropout_mu, kappa_dropout_sigma``
        (:data:`clvbayes.priors.BGNBD_HIERARCHICAL_PRIORS`).
    segments : str, optional
        Name of an RFM column (channel, cohort, region, ...): each segment gets its own
        ``r, alpha, a, b`` (posterior dims ``chain, draw, segment``).
    pooling : {"partial", "none", "complete"}
        How segments share information (:mod:`clvbayes.models.hierarchy`): a
        hierarchical prior on ``log r``, ``log(r / alpha)`` (the mean purchase rate),
        ``logit phi_dropout`` and ``log kappa_dropout`` (default); independent segments with the plain priors; or
        one population (the plain model, on rows keyed by segment so that its
        pointwise log-likelihood compares with the other two by PSIS-LOO).
    centered : bool or "auto"
        Centred hierarchical prior for all segments (True), for none (False), or
        (``"auto"``, default) for segments with at least 1,000 customers, whose own data
        pin their parameters (:mod:`clvbayes.models.hierarchy`).

    Notes
    -----
    The likelihood is summed over the unique ``(frequency, recency, T)`` rows weighted by
    their customer counts, with the Gamma/Beta-function terms computed once per distinct
    frequency. The same numpy function gives the pointwise log-likelihood
    (:meth:`FittedModel.log_likelihood`), so nothing is hidden in an opaque potential.

    Examples
    --------
    >>> fitted = BGNBD().fit(rfm, seed=1)            # doctest: +SKIP
    >>> fitted.summary()                             # doctest: +SKIP
    >>> by_channel = BGNBD(segments="channel").fit(rfm, seed=1)  # doctest: +SKIP
    """

    family = bgnbd.FAMILY
    default_priors = BGNBD_PRIORS
    prior_names = frozenset({"r", "alpha", "a", "b", "phi_dropout", "kappa_dropout"})
    prior_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {
        frozenset({"a", "b"}): frozenset({"phi_dropout", "kappa_dropout"}),
        frozenset({"phi_dropout", "kappa_dropout"}): frozenset({"a", "b"}),
    }
    hierarchical_priors = BGNBD_HIERARCHICAL_PRIORS


class MBGNBD(BGNBD):
    """Modified BG/NBD (Batislam, Denizel & Filiztekin 2007): dropout possible at x = 0.

    Parameters
    ----------
    priors : mapping, optional
        As for :class:`BGNBD` (``r``, ``alpha`` and ``phi_dropout``/``kappa_dropout`` or
        ``a``/``b``). Defaults are the BG/NBD's (:data:`clvbayes.priors.BGNBD_PRIORS`):
        the parameters have the same meaning and similar magnitudes (CDNOW weeks: r=0.53,
        alpha=6.2).
    segments, pooling, centered
        As for :class:`BGNBD` (same reparametrisation and hyperpriors).

    Notes
    -----
    The likelihood is computed as the BG/NBD's (see :class:`BGNBD`), with the MBG/NBD's
    extra dropout chance at ``x = 0``.

    Examples
    --------
    >>> fitted = MBGNBD().fit(rfm, seed=1)            # doctest: +SKIP
    >>> fitted.summary()                             # doctest: +SKIP
    """

    family = mbgnbd.FAMILY
