// The clinic's own description from the API (GET /api/v1/clinic): name, city, zone, course and
// hold length, contact. Asked once per page.

import { get } from './api.js';

let answer = null;

export function clinicInfo() {
  if (!answer) answer = get('/api/v1/clinic');
  return answer;
}
