"""Generation: the request/answer contract and the backends that sample answers from a policy.

It sits below the judge, the rollout, curation and evaluation, which all sample from models, so
each of them imports downward (HF `generate`, OpenAI-compatible endpoints; TRL's vLLM stays in train/).
"""
