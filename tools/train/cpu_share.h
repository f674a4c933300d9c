// cpu_share.h: how many OpenMP threads a step should use on a shared machine.
//
// libgomp's threads spin while they wait for work. Beside another busy process
// they take the cores it needs and the step gets many times slower (README "On
// a shared machine"); passive waiting halves the speed of a machine of its own.
// So gc_train keeps the default waiting and instead counts, every few steps,
// the other processes' runnable threads (/proc/stat's procs_running less this
// process's running threads) and uses the cores they leave, at least one.
// Results do not depend on the thread count (every kernel reduces in a fixed
// order), so only the time changes.
#pragma once

namespace gc {

// The thread count for the next steps (1..cores); `cores` when /proc cannot be read.
int threads_for_shared_cores(int cores);

// On a shared machine, the cores other processes leave (unless OMP_NUM_THREADS
// says how many): sets OpenMP's thread count every 10 steps, from step 0.
void share_cores_every_few_steps(int step);

}  // namespace gc
