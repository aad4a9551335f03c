import dataclasses
import subprocess
import sys

import pytest

from sertk.config import (
    DataConfig,
    ExperimentConfig,
    FoldConfig,
    TrainConfig,
    config_from_dict,
    dump_config,
    load_config,
)
from sertk.errors import ConfigError


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_reference_settings():
    cfg = load_config(None)
    assert cfg == ExperimentConfig()
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.optimizer) == (1e-5, 32, "adamw")
    assert (cfg.train.num_workers, cfg.train.device) == (0, "cpu")


def test_yaml_file_and_overrides(tmp_path):
    path = write(
        tmp_path,
        """
name: emodb-logmel
data: {corpus: emodb, root: ../shared/corpora/emodb, labels: emodb7}
train:
  lr: 1e-4          # YAML 1.1 reads this as a string; a float field parses it
  epochs: 5
  weight_decay: 0   # int where a float is expected
model: {name: mean_pool, hparams: {hidden: 64}}
""",
    )
    cfg = load_config(
        path, ["train.batch_size=8", "model.hparams.dropout=0.3", "train.patience=null"]
    )
    assert cfg.name == "emodb-logmel"
    assert cfg.data.corpus == "emodb" and cfg.data.labels == "emodb7"
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)
    assert cfg.train.weight_decay == 0.0 and isinstance(cfg.train.weight_decay, float)
    assert cfg.train.batch_size == 8 and cfg.train.epochs == 5 and cfg.train.patience is None
    assert cfg.model.hparams == {"hidden": 64, "dropout": 0.3}
    assert cfg.train.scheduler == "none"  # untouched fields keep code defaults


def test_override_creates_free_form_sections():
    cfg = load_config(None, ["model.hparams.hidden=128", "features.params.n_mels=40"])
    assert cfg.model.hparams == {"hidden": 128}
    assert cfg.features.params == {"n_mels": 40}


def test_feature_normalization_names_the_protocol():
    assert load_config(None).features.normalization == "global"
    cfg = load_config(None, ["features.normalization=speaker"])
    assert cfg.features.normalization == "speaker"
    with pytest.raises(
        ConfigError, match=r"features.normalization must be one of 'global', 'speaker'; got 'gl'"
    ):
        load_config(None, ["features.normalization=gl"])


def test_sequences_become_tuples_and_round_trip(tmp_path):
    cfg = load_config(
        None,
        [
            "folds.strategy=explicit",
            "folds.folds=[['03', '08'], ['09']]",
            "folds.valid_speakers=['10']",
            "data.targets=[neutral, angry]",
            "data.mapping={boredom: neutral}",
            "train.scheduler=cosine",
        ],
    )
    assert cfg.folds.folds == (("03", "08"), ("09",))
    assert cfg.folds.valid_speakers == ("10",)
    text = dump_config(cfg)
    assert "!!" not in text  # plain YAML: no python tags
    assert load_config(write(tmp_path, text)) == cfg


def test_unknown_keys_are_rejected_with_suggestions(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'lrr' in train \(did you mean 'lr'\?\); valid keys: lr, batch_size",
    ):
        load_config(None, ["train.lrr=1e-4"])
    with pytest.raises(
        ConfigError, match=r"unknown key 'trian' at the top level \(did you mean 'train'\?\)"
    ):
        load_config(write(tmp_path, "trian: {lr: 0.1}\n"))
    with pytest.raises(ConfigError, match="unknown key 'hiden' in model"):
        load_config(write(tmp_path, "model: {hiden: 3}\n"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=1.5", r"train.batch_size must be of type int; got 1.5"),
        ("train.batch_size=true", r"train.batch_size must be of type int; got True"),
        ("train.lr=fast", r"train.lr must be of type float; got 'fast'"),
        ("train.class_weights=maybe", r"train.class_weights must be of type bool"),
        (
            "train.scheduler=cos",
            r"train.scheduler must be one of 'none', 'cosine', 'plateau'; got 'cos'",
        ),
        ("data.labels=7", r"data.labels must be a string; got 7 \(int\); quote it"),
        ("folds.folds=[[03]]", r"folds.folds\[0\]\[0\] must be a string; got 3"),
        ("train.epochs=[1, 2]", r"train.epochs must be of type int"),
        ("model.hparams=3", r"model.hparams must be of type dict"),
        ("train=5", r"train must be a mapping"),
        ("train.lr.value=1", r"train.lr is a value, not a section"),
        ("train.lr", r"must look like key=value"),
        ("train.lr=[1", r"value is not valid YAML"),
        ("train.lr=-1", r"train.lr must be > 0"),
    ],
)
def test_bad_overrides_raise_precise_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="enable at most one"):
        TrainConfig(class_weights=True, balanced_sampling=True)
    with pytest.raises(ConfigError, match="not both"):
        DataConfig(labels="emodb7", targets=("neutral",))
    with pytest.raises(ConfigError, match="needs data.targets"):
        DataConfig(mapping={"calm": "neutral"})


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "train: {lr: [1\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    assert load_config(write(tmp_path, "")) == ExperimentConfig()


def test_yaml_never_instantiates_objects(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_config_from_dict_accepts_dataclass_sections():
    cfg = config_from_dict({"train": TrainConfig(lr=0.5), "folds": {"n_splits": 5}})
    assert cfg.train.lr == 0.5 and cfg.folds.n_splits == 5


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ExperimentConfig().train.lr = 1.0  # type: ignore[misc]


def test_fold_config_matches_make_folds_signature():
    folds = pytest.importorskip("sertk.folds")
    import inspect

    accepted = set(inspect.signature(folds.make_folds).parameters) - {"utterances"}
    assert set(FoldConfig().kwargs()) <= accepted


def test_preprocess_section_is_the_bundle_preprocess():
    from sertk.audio import Preprocess

    cfg = load_config(None, ["preprocess.duration=null", "preprocess.crop=center"])
    assert type(cfg.preprocess) is Preprocess
    assert cfg.preprocess == Preprocess(duration=None, crop="center")
    assert load_config(None).preprocess == Preprocess()
    with pytest.raises(ConfigError, match="preprocess.crop must be one of"):
        load_config(None, ["preprocess.crop=middle"])
    with pytest.raises(ConfigError, match="Preprocess.duration must be positive"):
        load_config(None, ["preprocess.duration=0"])


def test_label_map_from_data_config():
    pytest.importorskip("sertk.corpora")
    assert DataConfig().label_map() is None
    assert DataConfig(labels="iemocap4").label_map().labels == ("neutral", "happy", "angry", "sad")
    explicit = DataConfig(targets=("neutral", "angry"), mapping={"boredom": "neutral"}).label_map()
    assert explicit.labels == ("neutral", "angry")
    assert explicit.target("boredom") == "neutral" and explicit.target("happy") is None


def test_config_and_metrics_import_without_torch():
    code = "import sys, sertk.config, sertk.metrics; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_train_augment_is_an_augment_config_plus_run_fields():
    from sertk.augment import AugmentConfig, Augmenter

    cfg = load_config(None, ["train.augment={noise_p: 0.5, speed: [0.8, 1.2], copies: 3}"])
    augment = cfg.train.augment
    assert isinstance(augment, AugmentConfig) and augment.copies == 3
    assert (augment.noise_p, augment.speed) == (0.5, (0.8, 1.2))
    Augmenter(augment)  # the runner hands it to the augmenter as it is
    assert augment.waveform_enabled and augment.waveform_copies and not augment.features_enabled
    assert load_config(None, ["train.augment.mask_p=1"]).train.augment.features_enabled
    assert not TrainConfig().augment.waveform_enabled
    speeds = load_config(None, ["train.augment={speed_factors: [0.9, 1.1], copies: 2}"])
    assert speeds.train.augment.waveform_copies and not speeds.train.augment.waveform_enabled


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.augment.noise_p=1.5", r"train.augment.noise_p must be a number in \[0.0, 1.0\]"),
        ("train.augment.gain_db=[6, -6]", "train.augment.gain_db must be a .min, max. pair"),
        ("train.augment.mask_value=median", "train.augment.mask_value must be one of"),
        ("train.augment.copies=0", "train.augment.copies must be >= 1"),
        ("train.augment.nosie_p=0.5", "unknown key 'nosie_p' in train.augment"),
        ("final_model=retrain", "final_model must be of type bool or Literal"),
    ],
)
def test_bad_augment_and_final_model_settings(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_model_search_and_final_ensemble_round_trip(tmp_path):
    cfg = load_config(None, ["model.name=svm", "model.search={C: [0.1, 1], gamma: [scale]}",
                             "final_model=ensemble"])  # fmt: skip
    assert cfg.model.search == {"C": (0.1, 1), "gamma": ("scale",)}
    assert cfg.final_model == "ensemble" and load_config(None).final_model is False
    path = write(tmp_path, dump_config(cfg))
    assert load_config(path) == cfg
    assert load_config(None, ["final_model=true"]).final_model is True


def test_data_corpora_round_trip_through_yaml_and_overrides(tmp_path):
    path = write(
        tmp_path,
        "data:\n  corpora:\n    - {corpus: emodb, root: a}\n"
        "    - {corpus: ravdess, root: b, name: rav}\n",
    )
    cfg = load_config(path)
    first, second = cfg.data.corpora
    assert (first.corpus, first.root, first.prefix) == ("emodb", "a", "emodb")
    assert (second.prefix, second.name) == ("rav", "rav")
    assert load_config(write(tmp_path, dump_config(cfg), "again.yaml")) == cfg
    override = load_config(None, ["data.corpora=[{corpus: tess, root: t}]"])
    assert override.data.corpora[0].root == "t"
    with pytest.raises(ConfigError, match=r"unknown key 'path' in data.corpora\[0\]"):
        load_config(None, ["data.corpora=[{corpus: tess, path: t}]"])
    with pytest.raises(ConfigError, match="data.corpora must be of type"):
        load_config(None, ["data.corpora=emodb"])
