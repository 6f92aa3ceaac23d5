"""The generated demo business."""
