"""mist's settings (docs/models.md): one frozen dataclass, checked key by key when parsed from YAML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from mistrec.errors import ConfigError
from mistrec.features.scenario_text import NEW_SCENARIO_MODES, TEXT_ENCODERS
from mistrec.models.base import ModelConfig

__all__ = ["ACTIVE_ID_OPTIONS", "ACTIVITY_BOUNDS", "COLD_SCALES", "CO_CHOICE_P", "CO_CHOICE_QUERIES",
           "CO_OWN_WEIGHTS", "CO_SCALES", "CO_SCALES_DAMPED", "INTEREST_ALL", "MIN_CHOICE_QUERIES",
           "MIN_CHOICE_ROWS", "MistConfig"]

ACTIVITY_BOUNDS = (1, 3, 6, 21)  # activity buckets 0, 1-2, 3-5, 6-20, >20 (as mistrec.eval.activity's groups)
# `active_id: auto`'s options for a scenario's active users, the trained state first (ties keep it)
ACTIVE_ID_OPTIONS = ("active keep", "active hide")
# `interest_scope: auto`'s first option, the trained state (ties keep it): every row's interest reads every pool; the
# others, "interest own k" for each k of `interest_from`, have the rows of users with at least k training events in the
# scenario read its own pools only (Mist's `interest_options`)
INTEREST_ALL = "interest all"
COLD_SCALES = (1.0, 0.75, 0.5, 0.25, 0.0)  # `cold_scale: auto`'s choices, the trained state first (ties keep it)
# `cold_id: auto` and `cold_scale: auto` choose in a scenario only where the options move at least this many of its
# validation rows; with fewer the trained state stays (the synthetic platforms' home_feed has about 20 such rows, on
# which both choices flipped by 4e-5 of AUC)
MIN_CHOICE_ROWS = 100
# `prior_tilt: auto`'s choices of b (a new user's prior times 1 + b (log(1 + events) - center)), the trained state first
PRIOR_TILTS = (0.0, 0.1, 0.2, 0.4, -0.1, -0.2)
CO_SCALES = (1.0, 0.5, 0.25, 0.0)  # `co_scale: auto`'s weights of `co_items`' term, the trained state first
# ... and, with `co_shrink` (the damped term), also these: W is fitted by the pointwise loss against sampled
# negatives, and the damped term's scale that ranks best is larger than that fit's (on the Amazon pairs' validation
# rankings 2-4 times; docs/benchmarks.md, "co_items' cosines damped by the users a pair rests on")
CO_SCALES_DAMPED = (2.0, 3.0, 4.0)
# `co_own: auto`'s weights of the active users' own-scenario part of `co_items`' term (logit units per unit of cosine),
# tried with each non-zero weight of CO_SCALES: the pair (c, w) scores the term c * (cross + w * own)
CO_OWN_WEIGHTS = (1.0, 2.0, 4.0, 8.0, 16.0)
# `co_scale: auto` ranks at most this many validation queries a scenario (a seeded sample, ranked under every
# weight), and chooses for a kind of user (new in the scenario, active there) only with at least
# MIN_CHOICE_QUERIES of that kind's queries among them; with fewer the trained state stays
CO_CHOICE_QUERIES = 1000
MIN_CHOICE_QUERIES = 100
# ... and moves a kind's weight off 1 only where a paired bootstrap over the validation users puts the best weight's
# NDCG@10 ahead of 1's with a p-value below CO_CHOICE_P / 3 (three weights tried against 1): a difference of
# 0.001-0.002 NDCG@10 on 1,000 queries is within the sample's noise, and chosen on such a difference sport_phone's
# warm sport users lost 0.0024 on test (docs/benchmarks.md, "A choice gated on the validation sample's noise")
CO_CHOICE_P = 0.05


@dataclass(frozen=True)
class MistConfig(ModelConfig):
    """mist's settings, grouped by step (docs/models.md): the behaviour tokens and attention (scorer, weights,
    softmax scope, transfer bias), the interests and the transfer read-out, users new in a scenario (user dropout,
    cold rows, cold id), item terms (bias, prior), the scenario-adaptive top, and new scenarios."""

    # a run saved before `co_shrink_new` (2026-12-05) was scored without it, one saved before `prior_tilt` without
    # a tilt, one saved before `co_own` (2026-12-06) without the own scenario's part, one saved before `active_id`
    # with every active user's id read (ModelConfig.saved_without)
    saved_without: ClassVar[dict[str, Any]] = {"co_shrink_new": None, "prior_tilt": "off", "prior_tilt_guard": "both",
                                               "co_own": "off", "active_id": "keep", "interest_scope": "all"}

    dropout: float = 0.2  # tuned on ML-1M validation: 0.0 overfits after ~5 epochs
    self_attention_layers: int = 0
    heads: int = 2
    attention_hidden: tuple[int, ...] = (36,)
    # the target-attention score: "mlp", DIN's activation unit MLP([e, q, e - q, e * q]) with attention_hidden;
    # "bilinear", e . (W q + w) / sqrt(E), several times cheaper per event (layers.BilinearScorer); "sum", the two
    # added, the activation unit's part starting at zero (layers.SumScorer)
    scorer: Literal["bilinear", "mlp", "sum"] = "bilinear"
    weights: Literal["softmax", "din"] = "softmax"  # softmax | din (unnormalised activation-unit outputs)
    # softmax over each pool's events (a source scenario, and polarity with `polarity_pools`), as MiNet's
    # item-level attention within each domain: every source's interest is a weighted mean of its own events
    # and only the interest-level attention weighs sources against each other. "all": one softmax over the
    # whole history (a source with many events then outweighs a sparse one before the interest-level step).
    softmax_scope: Literal["all", "pool"] = "all"
    # Which pools the interest-level step (4) combines into the interest u. "all": every pool of the history.
    # "own_active": for a row whose user is active in its scenario (at least `cold_below` training events there),
    # its own scenario's pools only; the other scenarios' events still reach the row through the transfer read-out
    # (step 4b, per source) and `co_items`, and a user new in the scenario reads every pool, as with "all". Why:
    # leave-source-out's wrong signs come from the interest (docs/benchmarks.md, "Which part reads the other
    # scenarios' events"). Measured on the synthetic platforms and not adopted: leave-source-out 0.726 -> 0.816
    # against T on draw 0 (0.745 -> 0.679 on draw 1), the active users up, but the new users of vr_showroom and
    # game_lobby down 0.005-0.012 AUC.
    # Full-catalogue ranking of such a model goes through the crossed forward (MistCatalogue declines it).
    # "auto" (the default since 2026-12-06, forty-fourth session): trained as "all" (the same weights, bit for bit);
    # after training each scenario's validation rows choose which of its users' interests read their own scenario's
    # pools only in evaluation: none (as trained), or the users with at least k training events there, k one of
    # `interest_from`; where that gives the highest validation AUC (docs/models.md, "interest_scope: auto"). Users
    # with fewer events, and every training row, read every pool. Without validation rows, or where the options move
    # fewer than MIN_CHOICE_ROWS of them, none. Why: leave-source-out against its reference 0.75-0.82 -> 0.83-0.89 on
    # four draws of the transfer platform, every scenario's AUC up, users with fewer than 6 events moved by at most
    # 0.0013 (through the later choices), the Amazon cold runs and MovieLens-1M bit for bit (docs/benchmarks.md,
    # "interest_from: [6, 21]").
    interest_scope: Literal["all", "own_active", "auto"] = "auto"
    # `interest_scope: auto`'s thresholds k (training events in the scenario) among which validation chooses, besides
    # every pool for everyone: (6, 21), the default, never moves a user with fewer than 6 events there; (3, 6, 21) was
    # measured and cost users with 3-5 events on one draw (docs/benchmarks.md, "interest_scope: auto")
    interest_from: tuple[int, ...] = (6, 21)
    # with `interest_scope: own_active`, in training only this share of the active users' rows (drawn per row and
    # step) reads its own pools only, the rest every pool, so that the interest's reading of the other scenarios,
    # which the new users' rows depend on, is still trained on active rows too; evaluation reads every active row's
    # own pools only. 0.5 measured and not adopted: leave-source-out fell back to 0.750 against T and the sparse
    # users still lost (docs/benchmarks.md, "own_active_rows: 0.5").
    own_active_rows: float = 1.0
    transfer_bias: bool = True
    # A second transfer bias, A[target, source], added to the attention scores of the rows whose user has events in
    # the target scenario (activity > 0), starting at zero: a user active in the target can read the other
    # scenarios with other weights than a user new there, whose own pool is empty. Needs transfer_bias. Measured on
    # the synthetic platforms and not adopted: the identity control gained, leave-source-out against its reference
    # fell (0.762 -> 0.737) and game_lobby's users with 1-2 events lost 0.0077 AUC (docs/benchmarks.md,
    # "transfer_active on the transfer platform").
    transfer_active: bool = False
    history_labels: bool = True  # embed each history event's (training) label
    side_features: bool = True  # tokens and the query add their item's side-feature embeddings (category, genres)
    history_values: bool = True  # and the graded value behind it (a rating), when the data has one
    polarity_pools: bool = True  # pool liked and not-liked events of each source apart (2 interests per source)
    # the interest-level attention may also choose no source: a learned per-target logit for a zero interest
    # competes with the pools (models/mist_parts.interest_shares), so sources that say nothing of the target need
    # not make up the whole interest of a user who has no event in it
    null_interest: bool = False
    user_per_scenario: bool = False  # an extra user embedding per (user, scenario): a scenario-specific user
    # DropoutNet-style (Volkovs et al., NeurIPS 2017): in training, this share of rows sees the reserved unknown
    # user (index 0) instead of its user id, so the model must also predict from the history alone, as for a
    # user new to the platform; the history then carries interest across scenarios instead of the id. At 1.0
    # the id is never read, in evaluation either (its embedding would be untrained noise there).
    user_dropout: float = 0.5
    # with item content vectors (docs/models.md, "Content vectors"): in training, this share of the items read the
    # unknown item's id embedding instead of their own, so the content must carry them, as it carries a new item
    item_id_dropout: float = 0.5
    content_fusion: str = "add"  # add: id + content; gate: g * id + (1 - g) * content (layers.FeatureEmbedding)
    content_dropout: float = 0.0  # dropout on the content vector before its projection, in training
    # Transfer to users new in a scenario (docs/models.md): in training, this share of the rows whose history has
    # events of other scenarios is shown as a user new in the row's scenario would be: that scenario's events are
    # removed from the history and the user's activity there (`Batch.activity`) becomes 0. Their labels stay, so
    # the source scenarios' events must carry them, as they must carry a cold user at inference. 0.5 was measured
    # as the default and not adopted (docs/models.md, "cold_rows 0.5: measured, not adopted")
    cold_rows: float = 0.0
    # In training, this share of the rows is shown a second time, blank: no history, the unknown user (index 0) and
    # activity 0, added to the batch, its loss summed into the row's (the row itself trains as it is). The network
    # then learns, per scenario, what it says of an item to a user it knows nothing of: the reference of
    # `cold_scale`'s "anchor" form (the network's logit had the user no history), otherwise seen only on users'
    # first events. 0.1 measured and not adopted: the identity control's new users gained, the Amazon cold users
    # lost 0.0004-0.0039 AUC in 6 directions of 8 (docs/models.md, "blank_rows: measured, not adopted").
    blank_rows: float = 0.0
    # In training, this share of the rows whose history has events of another scenario loses all the events of one
    # such scenario, drawn uniformly among those its history holds (the row's own scenario's events, its activity
    # and its label stay): a history as leave-source-out shows it, seen in training. 0.25 measured on the synthetic
    # platforms and not adopted: the identity control gained, leave-source-out against its reference fell (0.762 ->
    # 0.706; docs/benchmarks.md, "source_rows on the transfer platform").
    source_rows: float = 0.0
    # In training, each event of another scenario than the row's leaves the row's history with this probability,
    # independently (the row's own scenario's events, its activity and its label stay): dropout on what the other
    # scenarios' events may fit. 0.2 measured on the synthetic platforms and not adopted: leave-source-out against
    # its reference fell (0.762 -> 0.730) and the identity control's off-diagonal drops grew (docs/benchmarks.md,
    # "event_dropout on the transfer platform").
    event_dropout: float = 0.0
    # In training, dropout with this rate on the item vectors of the history's events (as the tokens and the
    # transfer read-out read them; the candidate's own vector is untouched): a limit on what an event's vector can
    # fit. 0.2 measured on the synthetic platforms and not adopted: every scenario lost about 0.002 AUC and
    # leave-source-out against its reference fell (0.762 -> 0.737; docs/benchmarks.md, "history_dropout on the
    # transfer platform").
    history_dropout: float = 0.0
    # "hide": a row whose user is new in its scenario (fewer than `cold_below` events there) reads the unknown user
    # (index 0) instead of the user's id, in training and in evaluation: a user new in a scenario is read through
    # their history alone. "keep": the id is read whatever the activity. "auto" (the default): trained as "hide";
    # after training, each scenario's validation rows decide whether its new users read their id (learned in their
    # other scenarios) in evaluation: where that gives the higher validation AUC (docs/models.md, "cold_id: auto").
    # Without validation rows, as "hide".
    cold_id: Literal["hide", "keep", "auto"] = "auto"
    # with cold_id: hide or auto, a user counts as new in the scenario below this many training events there (1: none;
    # 3: the activity groups 0 and 1-2)
    cold_below: int = 3
    # "auto": after training, each scenario's validation rows decide whether the rows of users active there (at least
    # `cold_below` training events in it) read their user id in evaluation, as trained, or the unknown user (index 0),
    # as a user new to the platform reads it: where that gives the higher validation AUC (docs/models.md, "active_id:
    # auto"). Training reads the id either way (hidden on `user_dropout`'s share of its rows). "keep": always read.
    # Without validation rows, or where hiding moves fewer than MIN_CHOICE_ROWS of them, "keep". Measured and not
    # adopted as the default: on the synthetic platforms every scenario's AUC rose by 0.008-0.015, and
    # leave-source-out's Spearman against the planted T fell by 0.05-0.08 (docs/benchmarks.md, "active_id: auto").
    active_id: Literal["keep", "auto"] = "keep"
    # "auto" (the default): after training, each scenario's validation rows choose what a user with no event in the
    # scenario yet gets of what was learned from the users active there, in one of two forms, s in COLD_SCALES:
    # "scale", on every item, with the counted prior (implicit data) logit = prior + co + s * (bias + rest), without
    # one (logged labels, where the learned bias is the item's base rate) logit = bias + co + s * rest; "anchor",
    # logit = item terms + co + rest_0 + s * (rest - rest_0), rest_0 the network's logit had the user no history, so
    # s scales what the user's other scenarios say through the network. `co_items`' term, read from the user's own
    # other scenarios, stays whole; s = 1 is the trained state in both forms (ties keep the earlier option, "scale"
    # before "anchor"). The choice scores every validation row of the scenario as its user would be new there (its
    # events there out of the history), not only the few users new there, whose rows are too few to choose by (the
    # synthetic identity control's 235-494 per scenario chose the network's transfer where the test rows lose by it;
    # docs/models.md, "cold_scale: auto"). Before 2026-12-03 (nineteenth session) only the "scale" form, chosen on the
    # real new users' rows, applied to users with fewer than `cold_below` events; before the eighteenth session the
    # scale applied only on items with a training positive in the scenario and left the bias whole. "off": s = 1
    # always. Without validation rows (or fewer than MIN_CHOICE_ROWS that the options move), 1.
    cold_scale: Literal["auto", "off"] = "auto"
    # true (the default): on logged labels (no counted prior in training) `cold_scale: auto` also offers a third
    # form, "rate s" (s below 1): logit = counted rate + co + s * (learned bias - counted rate + rest), the counted
    # rate the logit of the (scenario, item)'s smoothed click rate in the training rows (the popularity baseline's,
    # `prior_strength` pseudo-rows), counted before training and never read in training. The default since
    # 2026-12-04 (twenty-fifth session): against a rule written before the runs it was refuted on one draw of the
    # synthetic identity control (vr_showroom's new users -0.006) and met it on a second draw; on both draws the
    # identity control's new users within 0.005 of the isolated model or above it in every scenario (docs/models.md,
    # "cold_rate"). With a counted prior (implicit data) the "scale" form already keeps the rate whole, and with
    # `cold_scale: off` nothing is chosen: in both cases it adds nothing.
    cold_rate: bool = True
    # "auto" (with the counted prior, implicit data, and `cold_scale: auto`): after `cold_scale`, each
    # scenario's validation rows, scored as their users would be new there, choose how much a new user's prior leans
    # on what they did elsewhere: the prior times 1 + b (log(1 + n) - center), n the events in the user's history (a
    # new user's are all from other scenarios), center the mean of log(1 + n) over the training users (n their
    # training positives, at most the history length), b in PRIOR_TILTS (0, the trained state, first; ties keep it).
    # On the Amazon pairs the users who did more in the other domain follow the target's popular items more closely
    # (benchmarks/cold_auc_ceiling.py; docs/models.md, "prior_tilt"). Users with events in the scenario are not
    # touched. The choice is then weighed on the validation ranking (GuardsOnRanking): `co_scale`'s choice is made
    # with and without the tilt, and a scenario keeps it unless its new users' validation NDCG@10 is higher without.
    # "off": b = 0. The default since 2026-12-05 (thirty-seventh session): unguarded it had lifted cold AUC in all 8
    # directions but cost full-catalogue NDCG@10 0.0041 on electronic_phone's electronic (thirty-second session);
    # guarded, against a rule written before the runs, cold AUC up in 6 of 8 directions (+0.0001 to +0.0009), level
    # in 2 (the guard kept no tilt there), NDCG@10 nowhere down by more than 0.0007, every warm list bit for bit
    # (docs/benchmarks.md, "prior_tilt guarded by the ranking").
    prior_tilt: Literal["auto", "off"] = "auto"
    # What the guard above takes the tilt out of where a scenario's new users rank their validation queries better
    # without it. "ranking": the ranking's scores only (`ranking_scores` subtracts the tilt's term; models/base.
    # OrdersRanking); the click probability (predict, AUC, the service's reported probability) keeps the tilt the
    # validation AUC chose, as `rank_exposure` gives the ranking a term the probability does not have. "both": the
    # probability too (the thirty-seventh session's behaviour, and that of runs saved before this option). The
    # default since 2026-12-05 (thirty-eighth session), by a rule written before its runs: on the Amazon pairs' 24
    # cold runs every choice and every test ranking as with "both", bit for bit, cold AUC up where a tilt was refused
    # (+0.0001 to +0.0020, electronic_cloth's cloth 0.7202 -> 0.7222), nowhere down (docs/benchmarks.md, "prior_tilt
    # kept in the click probability where the ranking refuses it").
    prior_tilt_guard: Literal["ranking", "both"] = "ranking"
    # "auto" (the default): after training (and after `cold_scale`), each scenario's validation rows choose what a
    # user with at least one event there gets of the learned part of the logit, s in COLD_SCALES, in the "scale"
    # form: with the counted prior logit = prior + co + s * (bias + rest), without one bias + co + s * rest, chosen
    # on the scenario's validation rows as they are (only those users' rows move). s = 1 is the trained state (ties
    # keep it). Added 2026-12-03 (twentieth session): on the Amazon pairs' warm users the choice (0-0.5) beat s = 1
    # in test AUC in all 8 directions (docs/models.md, "warm_scale: auto"; benchmarks/warm_scale_effect.py).
    # "off": s = 1 always.
    warm_scale: Literal["auto", "off"] = "auto"
    # the top also reads an embedding of the user's activity in the scenario (0, 1-2, 3-5, 6-20, >20 events)
    activity_embedding: bool = False
    # a learned bias per (scenario, item) added to the logit: the item's prior in the scenario (its popularity
    # against the negatives) on a direct path, which the top otherwise has to find through the item's embedding
    item_bias: bool = True
    # the item's prior in the scenario as a fixed offset of the logit: the logit of its smoothed positive rate in
    # the training rows of the scenario (as the popularity baseline; `prior_strength` pseudo-rows at the
    # scenario's rate), fitted before training; the network learns what the user adds to it. None (the default):
    # on where the training negatives are sampled (implicit data, FeatureSpec.sampled_negatives), where that rate
    # is the item's popularity against the sampler and one sampled negative per positive leaves the learned bias
    # too noisy to rank a full catalogue by (docs/models.md, "Why the item prior on implicit data"); off with
    # logged labels
    item_prior: bool | None = None
    prior_strength: float = 10.0
    # where the negatives were sampled: "expected" (the default since 2026-12-04, thirty-first session), the prior
    # counts each item's negatives as their expectation under the sampler (the scenario's training negatives over
    # its items with a training positive, as data/negatives.py draws them uniformly from those) instead of the number
    # drawn for it, a random count that says nothing of the item and reorders items with as many positives (on the
    # Amazon electronic_cloth pair 3.2 negatives a pool item, standard deviation 2.0); the prior then orders a
    # scenario's items as their count of positives does (docs/models.md, "prior_negatives"). "counted": the rows'
    # own count, as before. With logged labels the negatives are information and always counted.
    prior_negatives: Literal["expected", "counted"] = "expected"
    # > 0: item-to-item transfer (mist_cooc.py): the logit adds, per liked history event, a learned weight per
    # (target, source) scenario times the cosine of the event's item and the candidate in the training positives,
    # each item's `co_items` nearest items kept (docs/models.md, "co_items"). 0: off.
    co_items: int = 50
    # which history events the term reads: "cross" (the default), those of scenarios other than the row's (transfer
    # only: a platform whose users each stay in one scenario gets no term, MovieLens-1M by age among them); "all",
    # the row's own scenario's events too (item-to-item recommendation within the scenario as well; 0.0015 AUC
    # below the default on MovieLens-1M by age, seed 2022)
    co_scope: Literal["cross", "all"] = "cross"
    # lambda of the damping c / (c + lambda) of the term's cosines, c the users an item pair shares (item-KNN's
    # shrinkage: a pair that rests on one or two users counts less); 0: the cosine as it is (docs/models.md,
    # "co_shrink")
    co_shrink: float = 0.0
    # lambda of that damping for a row whose user is new in the row's scenario (no training event there), in
    # evaluation only: training, the table's order and the active users keep `co_shrink`. A setting that leaves the
    # trained weights as they are (a saved run can be scored with it, benchmarks/rechoose.py --settings); with it
    # `co_scale: auto` also tries CO_SCALES_DAMPED for those users. 3 (the default since 2026-12-05, thirty-sixth
    # session: cold users' full-catalogue NDCG@10 up in 7 of the 8 Amazon directions, every active user's score
    # unchanged; docs/benchmarks.md, "co_shrink_new: the damping for the new users only"); 0 with `co_shrink: 0`:
    # the cosine as it is for every row; None: `co_shrink`'s (docs/models.md, "co_shrink")
    co_shrink_new: float | None = 3.0
    # how many of each item's `co_items` places (the nearest first) a row whose user is new in the row's scenario
    # reads, in evaluation only: training and the active users read all of them. A setting that leaves the trained
    # weights as they are (benchmarks/rechoose.py --settings); with it `co_scale: auto` also tries CO_SCALES_DAMPED
    # for those users. None: all `co_items` (docs/models.md, "co_items"; docs/benchmarks.md, "The depth for the
    # active users only")
    co_items_new: int | None = None
    # "auto": in evaluation, a row of a user active in the row's scenario also reads their liked events of that
    # scenario (which `co_scope: cross` leaves out), through each item's `co_own_items` nearest items (the table is
    # fitted that deep; training, the new users' rows and every other-scenario event read the first `co_items`
    # places, bit for bit as without it), weighted per scenario by w chosen with `co_scale`'s weight c for the active
    # users on the validation ranking among CO_OWN_WEIGHTS (c * (cross + w * own); w 0 unless it beats the trained
    # state by more than the sample's noise, CO_CHOICE_P). Needs `co_scope: cross` and `co_scale: auto`. "off": none
    # (docs/models.md, "co_own"; docs/benchmarks.md, "The active users' own scenario, read in evaluation").
    # None (the default since 2026-12-06, forty-first session): "auto" wherever it applies (`co_items` on, `co_scope:
    # cross`, `co_scale: auto`, `co_own_items` >= `co_items`), "off" elsewhere; `reads_own` says which
    co_own: Literal["off", "auto"] | None = None
    # the places of each item's table `co_own` reads (the table's depth with it)
    co_own_items: int = 500
    # how many times faster than the rest the term's weights W learn in the first epoch (W = co_gain * fast +
    # weight, `fast` learning for one epoch of rows; mist_cooc.py)
    co_gain: float = 20.0
    # how the term and the network share the labels: "residual", the network's own loss as without the term plus the
    # sum's loss with the network's part held fixed (the term learns what the network leaves), so the network trains
    # as it would alone; "joint", one loss on their sum (the network learns around the term, and less: 0.0016-0.0039
    # AUC on the ML-1M genre shelves, docs/models.md). "auto" (the default since 2026-12-03): residual, or joint on
    # data with conversion labels (the residual loss trains the click logit only)
    co_fit: Literal["auto", "joint", "residual"] = "auto"
    # "auto": after training (after the validation rounds), each scenario chooses the weight c in CO_SCALES of
    # `co_items`' term, apart for its users new there (no event yet) and those active there, on the validation
    # queries' full-catalogue NDCG@10 (mistrec.eval.ranking; `mistrec train` does it, with the rows in memory): at
    # most CO_CHOICE_QUERIES queries a scenario, scored once and ranked under every weight (the term is computed
    # apart from the rest and added at each weight; a query whose positives all have 10 of the scenario's
    # most-taken items above them under every weight is not scored further), a weight other than 1 kept only
    # where it beats 1 by more than the sample's noise (CO_CHOICE_P). A ranking metric, because the term's weight
    # moves the top ten and the rows' AUC the other way (validation AUC prefers 0.25-0.5 where the cold users'
    # NDCG@10 loses by it; docs/benchmarks.md, "co_items' weight chosen on a ranking metric"). The default since
    # 2026-12-04 (twenty-eighth session; docs/models.md). "off": the term whole (c = 1), as trained.
    co_scale: Literal["auto", "off"] = "auto"
    # What a full-catalogue ranking orders by (`mistrec evaluate`'s ranking, the validation choices made on one, the
    # service's recommendations; models/base.OrdersRanking). "auto" (the default): on logged labels (the rows are
    # what users were shown or chose to rate, no sampled negatives), log P(click | shown) + log P(shown), the second
    # the item's share of the scenario's training rows (one pseudo-row per item): the logit answers whether a user
    # who is shown (or rates) an item takes it, a ranking of every item asks which ones they will take, and the items
    # never shown were never negatives. On the MovieLens-1M genre shelves it lifts the family shelf's test NDCG@10
    # from 0.162 to 0.330 (3 seeds), where the item's count of positives alone (`most_popular`) gets 0.317
    # (docs/benchmarks.md, "Popularity by count"). Chosen per scenario on the validation queries' ranking since the
    # thirty-first session (mistrec.eval.ranking.choose_exposure): where the shown item follows each user's own
    # interest the global share is the wrong P(shown) (the synthetic platforms: NDCG@10 0.43 -> 0.29 with it), and
    # there the scenario ranks by the logit. On sampled negatives (implicit data) nothing: the rows'
    # negatives are the sampler's, and the counted prior already carries the items' popularity. "off": the logit.
    # AUC, LogLoss and every pointwise figure read the logit either way.
    rank_exposure: Literal["auto", "off"] = "auto"
    # The transfer read-out (docs/models.md, step 4b): each source pool's interest, the attention-weighted mean of
    # its events' item vectors v_k, is matched with the candidate in the target scenario's metric W_t, and the
    # matches are summed with learned per-(target, pool) weights A: logit += sum_k A[t, k] v_k . (W_t i). A
    # bilinear form, as matrix factorisation's, that the top's MLP would otherwise have to approximate from u * q.
    transfer_head: bool = True
    # the initial scale of every embedding in a token (item, side features, scenario, gap, label); 0: the
    # ids at 0.01 and the context embeddings at PyTorch's N(0, 1)
    init_std: float = 0.1
    top: Literal["star", "ple", "mlp", "none"] = "star"
    auxiliary: bool = True  # star top: STAR's auxiliary network (scenario embedding + features -> a logit term)
    hidden: tuple[int, ...] = (128, 64, 32)  # STAR's sizes
    n_experts: int = 4  # ple top: shared experts
    tower: tuple[int, ...] = (8,)  # ple top: per-scenario tower
    # a scenario with no training rows: "shared" (the trained scenarios' mean path), "text" (a mix of the trained
    # scenarios weighted by the similarity of their descriptions, when the data's scenarios table describes
    # them) or "uniform" (equal weights); text_encoder "auto" is MiniLM with the text extra, else TF-IDF.
    # "shared" is the default: "text" gains where the new scenario behaves like its description's neighbour
    # (+0.015 AUC on a planted clone) and is level in AUC, worse in LogLoss, where it does not (docs/benchmarks.md)
    new_scenarios: str = "shared"
    text_encoder: str = "auto"
    text_temperature: float = 0.1

    @property
    def reads_own(self) -> bool:
        """Whether `co_own` is on: "auto", or unset where it applies (`co_items` on, `co_scope: cross`, `co_scale:
        auto`, `co_own_items` >= `co_items`)."""
        if self.co_own is not None:
            return self.co_own == "auto" and self.co_items > 0
        return (self.co_items > 0 and self.co_scope == "cross" and self.co_scale == "auto"
                and self.co_own_items >= self.co_items)

    def validate(self) -> None:
        """What the types cannot say (parse_config checks them, and the choices): ranges, and one setting
        against another."""
        if self.top == "none" and not self.transfer_head:
            raise ConfigError("MistConfig top: none leaves only the transfer read-out: set transfer_head: true.")
        if self.embedding_dim % self.heads:
            raise ConfigError(f"embedding_dim ({self.embedding_dim}) must be divisible by heads ({self.heads}).")
        if self.init_std < 0:
            raise ConfigError(f"The 'init_std' parameter of MistConfig must be >= 0. Got {self.init_std}.")
        if self.new_scenarios not in NEW_SCENARIO_MODES:
            raise ConfigError(f"The 'new_scenarios' parameter of MistConfig must be one of "
                              f"{', '.join(NEW_SCENARIO_MODES)}. Got {self.new_scenarios!r}.")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"The 'text_encoder' parameter of MistConfig must be one of {', '.join(TEXT_ENCODERS)}."
                              f" Got {self.text_encoder!r}.")
        if not self.text_temperature > 0:
            raise ConfigError(f"The 'text_temperature' parameter of MistConfig must be > 0. Got "
                              f"{self.text_temperature}.")
        if self.content_fusion not in ("add", "gate"):
            raise ConfigError(f"The 'content_fusion' parameter of MistConfig must be add or gate. Got "
                              f"{self.content_fusion!r}.")
        if self.transfer_active and not self.transfer_bias:
            raise ConfigError("The 'transfer_active' parameter of MistConfig adds to the transfer bias: it needs "
                              "transfer_bias: true.")
        # shares and rates: in [0, 1], or [0, 1) where 1 would leave nothing to train on
        for name, upto_one in (("user_dropout", True), ("item_id_dropout", True), ("content_dropout", False),
                               ("cold_rows", True), ("blank_rows", False), ("source_rows", True),
                               ("event_dropout", False), ("history_dropout", False), ("own_active_rows", True)):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0 if upto_one else 0.0 <= value < 1.0):
                raise ConfigError(f"The '{name}' parameter of MistConfig must be in [0, 1{']' if upto_one else ')'}. "
                                  f"Got {value}.")
        if self.co_items < 0:
            raise ConfigError(f"The 'co_items' parameter of MistConfig must be >= 0 (0: off). Got {self.co_items}.")
        if self.co_own == "auto" and self.co_items:
            if self.co_scope != "cross" or self.co_scale != "auto":
                raise ConfigError("The 'co_own' parameter of MistConfig is auto: it needs co_scope: cross (with all, W "
                                  f"reads the own scenario's events already; got {self.co_scope}) and co_scale: auto "
                                  f"(its weight is chosen with co_scale's; got {self.co_scale}).")
            if self.co_own_items < self.co_items:
                raise ConfigError(f"The 'co_own_items' parameter of MistConfig must be >= co_items ({self.co_items}). "
                                  f"Got {self.co_own_items}.")
        if self.co_items_new is not None and self.co_items and not 1 <= self.co_items_new <= self.co_items:
            raise ConfigError(f"The 'co_items_new' parameter of MistConfig must be between 1 and co_items "
                              f"({self.co_items}), or None for all of them. Got {self.co_items_new}.")
        for name in ("co_shrink", "co_shrink_new"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:
                raise ConfigError(f"The '{name}' parameter of MistConfig must be >= 0 (0: none). Got "
                                  f"{getattr(self, name)}.")
        if not self.co_gain > 0:
            raise ConfigError(f"The 'co_gain' parameter of MistConfig must be > 0. Got {self.co_gain}.")
        if not self.interest_from or any(k < 1 for k in self.interest_from) or list(self.interest_from) != sorted(
                set(self.interest_from)):
            raise ConfigError("The 'interest_from' parameter of MistConfig must list increasing numbers of training "
                              f"events, each at least 1 (e.g. [6, 21]). Got {list(self.interest_from)}.")
        if self.own_active_rows < 1.0 and self.interest_scope != "own_active":
            raise ConfigError("The 'own_active_rows' parameter of MistConfig is the share of active rows that read "
                              "their own pools in training under interest_scope: own_active; with interest_scope "
                              f"{self.interest_scope!r} it does nothing. Set interest_scope: own_active, or leave "
                              "own_active_rows at 1.")
        if self.cold_below < 1:
            raise ConfigError(f"The 'cold_below' parameter of MistConfig must be >= 1. Got {self.cold_below}.")
