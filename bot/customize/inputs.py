"""What customization is built from, assembled in one place from the settings: the agent's
prompt recipe (retrieval, persona, glossary, token counter, prompt budget), the dataset
options, the base weights adapters are trained on and the model that measures them.

`lore customize dataset|train|retrain` and the scheduled retraining job all take their inputs
from here, so "the training prompts are the agent's prompts" holds by construction, not by
two code paths kept in sync.

Nothing here loads the answering model's weights: the token counter is the base model's
tokenizer (or the estimate when none is at hand), the context window its config's (or the
endpoint's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.glossary import glossary_for
from bot.customize.dataset import DatasetCard, DatasetOptions, build_dataset
from bot.model import BACKENDS
from bot.model.adapters import BASE
from knowledge.config import RetrievalSettings
from knowledge.errors import ConfigurationError

if TYPE_CHECKING:
    from bot.core.glossary import Glossary
    from bot.customize.teacher import Teacher
    from bot.model.base import ChatMessage, Model
    from bot.settings import LoreSettings
    from bot.store.answers import AnswerLog
    from bot.store.feedback import FeedbackStore
    from knowledge.knowledge_base import KnowledgeBase

TokenCounter = Callable[[Sequence["ChatMessage"]], int]


@dataclass(frozen=True)
class DatasetInputs:
    """Everything `build_dataset` takes besides the index and the stores."""

    retrieval: RetrievalSettings
    persona: str
    glossary: Glossary | None
    count_tokens: TokenCounter
    options: DatasetOptions

    def build(
        self,
        knowledge: KnowledgeBase,
        out_root: Path,
        *,
        feedback: FeedbackStore,
        answers: AnswerLog,
        teacher: Teacher | None,
    ) -> DatasetCard:
        """`build_dataset` with these inputs."""
        return build_dataset(
            knowledge,
            out_root,
            retrieval=self.retrieval,
            persona=self.persona,
            glossary=self.glossary,
            count_tokens=self.count_tokens,
            feedback=feedback,
            answers=answers,
            options=self.options,
            teacher=teacher,
        )


@dataclass(frozen=True)
class DatasetChoices:
    """The choices a person makes for one dataset (`lore customize dataset`'s flags); the
    retraining job takes the defaults."""

    include_restricted: bool = False
    redact_emails: bool = False
    redact_phones: bool = False
    distractor_share: float = DatasetOptions.distractor_share
    max_prompt_tokens: int | None = None  # None: the agent's budget for the configured model
    curated: tuple[Path, ...] = ()  # besides customize.curated_files
    use_feedback: bool = True


def dataset_inputs(settings: LoreSettings, choices: DatasetChoices = DatasetChoices()) -> DatasetInputs:
    """The inputs of a dataset built for the agent `settings` describe."""
    options = DatasetOptions(
        include_restricted=choices.include_restricted,
        redact_emails=choices.redact_emails,
        redact_phones=choices.redact_phones,
        distractor_share=choices.distractor_share,
        # The agent's own prompt budget: training prompts as long as those it answers.
        max_prompt_tokens=choices.max_prompt_tokens or agent_prompt_budget(settings),
        curated=tuple(dict.fromkeys([*settings.customize.curated_files, *choices.curated])),
        use_feedback=choices.use_feedback,
        feedback_admins=tuple(settings.customize.admins),
    )
    return DatasetInputs(
        retrieval=settings.retrieval,
        persona=settings.agent.persona,
        glossary=glossary_for(settings),
        count_tokens=token_counter(settings),
        options=options,
    )


def agent_prompt_budget(settings: LoreSettings) -> int:
    """The prompt budget the agent answers with (`Agent.answer`): training examples get the
    same, so the model learns on prompts as long as the ones it is asked with."""
    from bot.core.agent import MAX_PROMPT_TOKENS
    from bot.core.prompt import prompt_budget

    return prompt_budget(MAX_PROMPT_TOKENS, context_window(settings), settings.model.max_new_tokens)


def context_window(settings: LoreSettings) -> int:
    """The configured model's context window as the loaded model reports it, without loading
    weights: the base model's config when Lore loads the weights itself, else the server's
    (asked by the backend, e.g. the openai endpoint's)."""
    if not BACKENDS[settings.model.backend].loads_weights:
        from bot.model import load_model

        model = load_model(settings.model, settings.home)
        try:
            return model.context_window
        finally:
            model.close()
    from transformers import AutoConfig

    from bot.model.weights import resolve_base_model

    config = AutoConfig.from_pretrained(resolve_base_model(settings.model, settings.home))
    return int(getattr(config, "max_position_embeddings", 2048))  # as `LocalModel` reads it


def token_counter(settings: LoreSettings) -> TokenCounter:
    """The model's own token count when its tokenizer is at hand, else the estimate."""
    from bot.model.tokens import ChatTokenizer, estimate_tokens

    if not _base_model_folder_known(settings):
        return estimate_tokens
    from bot.model.weights import resolve_base_model

    tokenizer = ChatTokenizer.from_folder(resolve_base_model(settings.model, settings.home))
    return lambda messages: len(tokenizer.encode_chat(messages))


def evaluation_model(settings: LoreSettings) -> Model:
    """A model of its own for measuring candidates: the base weights loaded here, with no
    adapter, whichever backend answers users (an endpoint does not serve a fresh adapter)."""
    from bot.model import load_model

    base_weights(settings)  # the same check and message as training
    local = settings.model.model_copy(update={"backend": "local", "adapter": BASE})
    return load_model(local, settings.home)


def base_weights(settings: LoreSettings) -> Path:
    """The base model's folder that adapters are trained on and measured with."""
    from bot.model.weights import resolve_base_model

    if not _base_model_folder_known(settings):
        raise ConfigurationError(
            "Training and measuring adapters need the base model's weights: set model.base_model "
            "to the Hugging Face folder of the model the endpoint serves."
        )
    return resolve_base_model(settings.model, settings.home)


def _base_model_folder_known(settings: LoreSettings) -> bool:
    """Whether the base model's folder is at hand: always when Lore loads the weights itself,
    else only when `model.base_model` names it."""
    return BACKENDS[settings.model.backend].loads_weights or settings.model.base_model is not None
