//! Applying layer tar streams to a root directory, safely. (Being written.)
