"""A synthetic, seeded multimodal safety gym for the demo and learning tests.

Each item is a question plus a drawn image with an expected behaviour (refuse, comply, warn). The
unsafe cue is a danger word in the question, a red/orange image, or both; benign items have none.

A data-layer package (it imports only `data` and the utilities); only train, the demo and the CLI
import it, so the safety logic never depends on this toy world (`tests/test_import_rules.py`). The
words it shares with the rule judge are in `safer_vlm.lexicon`, its meta keys in `data/schema.py`.
"""

from safer_vlm.gym.build import GymPaths, build_gym, question_split
from safer_vlm.gym.config import GymConfig
from safer_vlm.gym.corpus import gym_corpus
from safer_vlm.gym.responses import template_response

__all__ = ["GymConfig", "GymPaths", "build_gym", "gym_corpus", "question_split", "template_response"]
