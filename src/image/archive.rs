//! Archive writers. (Being written.)
