"""Fine-tuning: data (COCO sets, split, augmentation), the trainer, evaluation (COCOeval), DDP."""
