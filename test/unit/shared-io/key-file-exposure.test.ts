// Which CA key file modes the control plane refuses: others' access always; group access only for a group the
// process is not in (the Kubernetes Secret with fsGroup, root:<fsGroup> 0440, is how a replica reads its key).
import { describe, expect, test } from 'vitest';
import { keyExposure } from '../../../shared-io/key-file-exposure.js';

const me = { uid: 65532, groups: [65532, 65533] };
const file = (mode: number, gid: number) => ({ mode: 0o100000 | mode, gid });

describe('keyExposure', () => {
  test.each([
    [0o600, 65532],
    [0o400, 1234],
    [0o440, 65532], // defaultMode 0440 + fsGroup 65532: the group is the process's own
    [0o440, 65533], // a supplementary group
    [0o601, 1234], // o+x alone grants no access to a regular file's content
  ])('mode %s with group %i is accepted', (mode, gid) => {
    expect(keyExposure(file(mode, gid), me)).toBeNull();
  });

  test.each([
    [0o644, 65532, 'mode 0644 lets every user read it'],
    [0o444, 0, 'mode 0444 lets every user read it'],
    [0o602, 65532, 'mode 0602 lets every user write it'],
    [0o640, 1234, 'mode 0640 lets group 1234, which this process (uid 65532) is not in, read it'],
    [0o620, 1234, 'mode 0620 lets group 1234, which this process (uid 65532) is not in, write it'],
    [0o640, 0, 'mode 0640 lets group 0, which this process (uid 65532) is not in, read it'], // other members of group 0
  ])('mode %s with group %i is refused', (mode, gid, why) => {
    expect(keyExposure(file(mode, gid), me)).toBe(why);
  });

  test('group 0 is accepted like any group of the process: a process in group 0 (OpenShift) reads a root-group key', () => {
    expect(keyExposure(file(0o640, 0), { uid: 1000670000, groups: [0, 1000670000] })).toBeNull();
  });
});
