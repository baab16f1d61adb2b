"""Tests for configurator.py with small stand-in dataclasses (independent of model.py/train.py)."""
import os
import sys
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # tests/conftest.py does this too when present
    sys.path.insert(0, ROOT)

import pytest

from configurator import ConfigError, help_text, parse_config, split_config


@dataclass
class ModelCfg:
    """Model shape."""
    n_layer: int = field(default=6, metadata={"help": "number of blocks"})
    norm: str = field(default="ln", metadata={"help": "normalization layer", "choices": ("ln", "rms", "crms")})
    dropout: float = field(default=0.0, metadata={"help": "dropout rate"})
    bias: bool = field(default=True, metadata={"help": "biases in linears"})
    mlp_hidden: int | None = field(default=None, metadata={"help": "MLP width, None = 4x"})


@dataclass
class TrainCfg:
    learning_rate: float = field(default=6e-4, metadata={"help": "peak learning rate"})
    out_dir: str = field(default="out", metadata={"help": "where checkpoints go"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model"})
    skip_blocks: tuple[int, ...] = field(default=(), metadata={"help": "blocks to skip"})


def parse(argv):
    return parse_config(argv, ModelCfg, TrainCfg)


def err(argv):
    with pytest.raises(ConfigError) as e:
        parse(argv)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_defaults_plain_dict():
    cfg = parse([])
    assert type(cfg) is dict
    assert cfg == {"n_layer": 6, "norm": "ln", "dropout": 0.0, "bias": True, "mlp_hidden": None,
                   "learning_rate": 6e-4, "out_dir": "out", "compile": False, "skip_blocks": ()}


def test_cli_typo_suggests():
    msg = err(["--learnig_rate=1e-3"])
    assert "'learnig_rate'" in msg and "did you mean 'learning_rate'" in msg
    assert "--help" in err(["--zzzzzz=1"])


def test_int_for_float_and_types():
    cfg = parse(["--learning_rate=1", "--dropout=0", "--n_layer=12", "--out_dir=runs/a b", "--mlp_hidden=100",
                 "--skip_blocks=(1, 3)"])
    assert cfg["learning_rate"] == 1.0 and isinstance(cfg["learning_rate"], float)
    assert isinstance(cfg["dropout"], float)
    assert cfg["n_layer"] == 12 and cfg["out_dir"] == "runs/a b" and cfg["mlp_hidden"] == 100
    assert cfg["skip_blocks"] == (1, 3)
    assert parse(["--out_dir=123"])["out_dir"] == "123"  # str keys keep unquoted text as text
    assert parse(["--out_dir='x'"])["out_dir"] == "x"
    assert parse(["--mlp_hidden=100", "--mlp_hidden=None"])["mlp_hidden"] is None  # last one wins
    assert "expected int" in err(["--n_layer=1.5"])
    assert "expected float" in err(["--learning_rate=fast"])


@pytest.mark.parametrize("text,value", [("True", True), ("true", True), ("1", True),
                                        ("False", False), ("false", False), ("0", False)])
def test_bool_spellings(text, value):
    assert parse([f"--compile={text}"])["compile"] is value


def test_bool_bare_flag_and_errors():
    assert parse(["--compile"])["compile"] is True
    assert "True/False" in err(["--compile=yes"])
    assert "--n_layer=3" in err(["--n_layer", "3"])  # only --key=value; the message shows the fix


def test_bad_enum():
    msg = err(["--norm=layernorm"])
    assert "bad value 'layernorm' for norm" in msg and "choose from ln, rms, crms" in msg
    assert parse(["--norm=rms"])["norm"] == "rms"


def test_help_lists_keys(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["--n_layer=3", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for key in ("n_layer", "norm", "dropout", "bias", "mlp_hidden", "learning_rate", "out_dir", "compile"):
        assert f"--{key}=" in out
    assert "--learning_rate=0.0006" in out and "peak learning rate" in out and "ln|rms|crms" in out
    assert out.index("ModelCfg") < out.index("--n_layer") < out.index("TrainCfg") < out.index("--out_dir")
    assert help_text(ModelCfg, TrainCfg).strip() == out.strip()
    with pytest.raises(SystemExit):
        parse(["-h"])


def test_config_file(tmp_path):
    f = tmp_path / "c.py"
    f.write_text('"""a config"""\n# comment\nn_layer = 4\nnorm = "rms"\nlearning_rate = 2  # int for float\n'
                 'bias = False\nskip_blocks = [2]\n')
    cfg = parse([str(f)])
    assert (cfg["n_layer"], cfg["norm"], cfg["learning_rate"], cfg["bias"]) == (4, "rms", 2.0, False)
    assert cfg["skip_blocks"] == (2,)
    # the command line beats the file whatever the order
    assert parse(["--n_layer=8", str(f)])["n_layer"] == 8


def test_config_file_typo(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("n_layer = 4\nlearning_rat = 1e-3\n")
    msg = err([str(f)])
    assert f"{f}:2" in msg and "did you mean 'learning_rate'" in msg


@pytest.mark.parametrize("line", ["import os", "n_layer = 2 * 3", "out_dir = os.getcwd()", "norm = rms",
                                  "print('hi')", "a, b = 1, 2", "for i in []: pass"])
def test_config_file_non_literal(tmp_path, line):
    f = tmp_path / "bad.py"
    f.write_text(f"n_layer = 4\n{line}\n")
    msg = err([str(f)])
    assert f"{f}:2" in msg


def test_config_file_bad_value_and_missing(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("norm = 'bogus'\n")
    assert "choose from ln, rms, crms" in err([str(f)]) and f"{f}:1" in err([str(f)])
    assert "not found" in err([str(tmp_path / "nope.py")]) and "nope.py" in err([str(tmp_path / "nope.py")])
    f.write_text("n_layer = (\n")
    assert "syntax error" in err([str(f)])


def test_split_config():
    cfg = parse(["--n_layer=3", "--learning_rate=0.1"])
    m, t = split_config(cfg, ModelCfg), split_config(cfg, TrainCfg)
    assert m == ModelCfg(n_layer=3) and t == TrainCfg(learning_rate=0.1)


def test_key_collision_refused():
    @dataclass
    class Other:
        n_layer: int = field(default=1, metadata={"help": "dup"})
    with pytest.raises(ConfigError, match="n_layer"):
        parse_config([], ModelCfg, Other)
