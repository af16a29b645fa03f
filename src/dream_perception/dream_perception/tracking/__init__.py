"""ROS-free 6-DoF object tracking: a mesh, aligned depth and robust ICP.

Modules, one concept each: `se3` (rigid transforms), `object_model` (the mesh as
sampled surface points + normals), `intrinsics` (validated pinhole K), `view`
(the mesh seen from the camera: silhouette and visible points), `segment`
(measured object points: silhouette, table-plane removal), `icp` (robust
point-to-plane ICP), `quality` (fit residual, inlier ratio, depth support),
`reinit` (search for a lost object), `tracker` (the state machine), `aruco`
(initial pose from a marker), `foundationpose` (the GPU tracker, lazily).
"""
