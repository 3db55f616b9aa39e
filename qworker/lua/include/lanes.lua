--[[ lanes (included): everything a script that moves or ends jobs may need: job_end, the
ready lists with their lanes (ready_lists), and dependencies (what ending a job in a flow does).
]]
--#include job_end
--#include ready_lists
--#include dependencies
