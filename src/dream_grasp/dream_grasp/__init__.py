"""dream_grasp"""
