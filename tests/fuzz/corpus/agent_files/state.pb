
at"m*%
k 0123456789abcdef0123456789abcdef2iB
nJ
tool1.0.0bold