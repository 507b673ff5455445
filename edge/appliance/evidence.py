"""A tracked face's aggregated evidence: the mean of its recent frames' embeddings.

Consecutive frames of one face are strongly correlated, so "3 of 5 frames matched" is
little more evidence than one frame. Averaging the frames' unit embeddings instead
cancels what differs between them (blur, noise, a turned head, light) and keeps what
they share (the face), so the mean is a better probe than any single frame. The loop
searches the gallery with it, scored with the same calibration as a single face.

The mean must only ever hold one person's frames: a frame that does not look like the
evidence so far (its 1:1 score against the mean below `same_face_score`, FAR 1 % at the
default 0.5) starts the evidence afresh. So a stranger who steps into an enrolled
person's track brings no borrowed evidence with them. Pure numpy: it neither embeds nor
scores; the loop passes the raw similarity that score corresponds to.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class TrackEvidence:
    def __init__(self, size: int = 5) -> None:
        if size < 1:
            raise ValueError(f"evidence size must be >= 1, got {size}")
        self.frames: deque[np.ndarray] = deque(maxlen=int(size))
        self.resets = 0  # times a frame unlike the mean started it afresh

    def __len__(self) -> int:
        return len(self.frames)

    def mean(self) -> np.ndarray | None:
        """The unit mean of the held embeddings (None when empty)."""
        if not self.frames:
            return None
        total = np.sum(self.frames, axis=0, dtype=np.float64)
        norm = float(np.linalg.norm(total))
        if not np.isfinite(norm) or norm <= 0.0:
            return None
        return (total / norm).astype(np.float32)

    def add(self, embedding: np.ndarray, *, same_face: bool = True) -> None:
        """Add one frame's unit embedding; `same_face` False (the caller compared it with
        `mean()` and found another face) clears the evidence first."""
        if not same_face and self.frames:
            self.frames.clear()
            self.resets += 1
        self.frames.append(np.asarray(embedding, dtype=np.float32))

    def differs(self, embedding: np.ndarray, min_similarity: float) -> bool:
        """Whether a frame's unit embedding is another face: its cosine to the mean so far is
        below `min_similarity` (False when nothing is held)."""
        mean = self.mean()
        return mean is not None and float(mean @ embedding) < min_similarity

    def add_frame(self, embedding: np.ndarray, min_similarity: float) -> bool:
        """Add one frame's unit embedding; one that `differs` is another face, and the evidence
        starts afresh with it. True when it did."""
        other = self.differs(embedding, min_similarity)
        self.add(embedding, same_face=not other)
        return other

    def clear(self) -> None:
        """Forget every frame (a frame that was a confident non-match, i.e. not the same face)."""
        if self.frames:
            self.frames.clear()
            self.resets += 1
