"""The flags and checks that `detect train` and `segment train` share (no MXNet: read at
`--help`)."""
from gluon_tricks.errors import UserError


def add_guard_arguments(parser, save_place):
    """The run guard's flags of a transfer command; `save_place` names where its checkpoints go."""
    parser.add_argument("--save-interval-minutes", type=float, default=0.0,
                        help="also checkpoint in the middle of an epoch every this many minutes "
                             "(0: at epoch ends only; a stop signal always checkpoints)")
    parser.add_argument("--keep-checkpoints", type=int, default=0,
                        help="keep the newest N mid-epoch checkpoints (0: all)")
    parser.add_argument("--fresh-start", action="store_true",
                        help="train from scratch even though %s holds checkpoints that fail "
                             "verification" % save_place)


def check_backbone_recipe(config, network_flag):
    """--backbone-recipe must name a recipe of scripts/ that trains the network of
    `network_flag` (a key of `config`), and come with the weights it made."""
    recipe = config.get("backbone_recipe")
    if recipe is None:
        return
    from gluon_tricks.paper import RECIPES
    if recipe not in RECIPES:
        raise UserError("--backbone-recipe %s is not a recipe of scripts/ (one of %s)"
                        % (recipe, ", ".join(sorted(RECIPES))))
    network = config[network_flag]
    if RECIPES[recipe].model != network:
        raise UserError("--backbone-recipe %s trains %s, not --%s %s"
                        % (recipe, RECIPES[recipe].model, network_flag, network))
    if not config.get("backbone_params"):
        raise UserError("--backbone-recipe needs --backbone-params (the weights it made)")
