"""The vision stages of the data path: detect faces, align them, (later) embed them.

``detector`` turns an RGB frame into `Detection`s (box, score, six keypoints);
``align`` turns a detection's keypoints into the 112×112 crop the embedders expect;
``liveness`` turns a detection's box into a probability that the face is live
(passive, one frame; not wired into the engine yet -- docs/liveness.md).
"""
