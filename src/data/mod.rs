//! Images in: CIFAR readers, download with checksum, augmentation and view batches.
