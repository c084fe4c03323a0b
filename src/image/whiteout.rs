//! OCI whiteout rules. (Being written.)
